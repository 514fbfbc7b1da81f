"""report.html: one self-contained page (inline CSS, PNGs as base64) readable offline.

Command: distbench report results/<timestamp>/

It shows the exact command, the summary table with failures and notes, every plot, the fairness
settings, the environment fingerprint and every raw run. No script, no external resource and no
clock: the same records and plots give the same bytes. Every text that comes from a record is
escaped (`html.escape`, quotes included, also inside attributes): records are input like any
other, and a results folder may come from someone else.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from distbench.core.version import __version__
from distbench.report.analysis import SetupSummary, Study
from distbench.report.plots import TITLES
from distbench.report.tables import (
    NOT_SIGNIFICANT,
    cell_notes,
    columns,
    fmt_pct,
    fmt_rate,
    fmt_s,
    framework_rows,
    verdict_lines,
)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right;vertical-align:top}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr.failed td{background:#fde8e8}tr.interrupted td{background:#fff6db}
td,th{white-space:nowrap}th.reason{text-align:left}td.reason{text-align:left;max-width:34em;white-space:normal}
pre,code{background:#f6f6f6;font-size:.88em}pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{margin:0;flex:1 1 480px}
.plots img{width:100%;border:1px solid #eee}.note{color:#7a4b00}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
footer{margin-top:2em;color:#777;font-size:.85em}
"""


def _table(headers: list[str], rows: list[tuple[str, list[str]]], reason_col: int = -1) -> str:
    head = "".join(f'<th class="reason">{escape(h)}</th>' if i == reason_col
                   else f"<th>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for cls, values in rows:
        tds = "".join(
            f'<td class="reason">{escape(v)}</td>' if i == reason_col else f"<td>{escape(v)}</td>"
            for i, v in enumerate(values)
        )
        body.append(f'<tr class="{escape(cls)}">{tds}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(alt)}</figcaption></figure>")


def _dl(items: dict[str, Any]) -> str:
    parts = []
    for k, v in items.items():
        if isinstance(v, dict):
            v = "; ".join(f"{a}: {b}" for a, b in v.items()) or "–"
        elif isinstance(v, list):
            v = ", ".join(str(x) for x in v) or "–"
        parts.append(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>")
    return f"<dl>{''.join(parts)}</dl>"


def _setup_section(s: SetupSummary, plots: dict[str, Path]) -> str:
    headers, make_row = columns(s)
    rows = [(c.status, make_row(c)) for c in s.cells]
    verdict = "".join(f"<li>{escape(line)}</li>" for line in verdict_lines(s))
    out = [f"<h2>{escape(s.setup.title())}</h2>",
           f'<p class="workload">Workload: {escape(s.workload())}</p>', "<h3>Verdict</h3>",
           f'<ul class="verdict">{verdict}</ul>', "<h3>Summary</h3>", _table(headers, rows, 2)]
    out.append("<p>Median over the successful runs of each cell; [95% CI] is a bootstrap "
               "interval of the median (of the ratio of medians for speedups, resampling "
               f"interleaved rounds). A speedup whose interval holds 1.0 reads "
               f"“{escape(NOT_SIGNIFICANT)}”; ⚠ marks a finding in the verdict. Speedup = "
               "median training time of <code>single</code> ×1 ÷ the cell's; efficiency = "
               "speedup ÷ workers (core: speedup ÷ (cores used ÷ the baseline's cores used)). "
               "Failed cells show their reason.</p>")
    fw = framework_rows(s)
    if fw:
        out.append("<h3>TensorFlow view (against the framework's own baseline)</h3>")
        out.append(_table(["Strategy", "Workers", "Baseline", "Speedup", "Efficiency"],
                          [("ok", r) for r in fw]))
    notes = cell_notes(s)
    if notes:
        out.append("<ul>" + "".join(f'<li class="note">{escape(n)}</li>' for n in notes)
                   + "</ul>")
    if plots:
        out.append("<h3>Plots</h3><div class=\"plots\">"
                   + "".join(_img(p, TITLES[name]) for name, p in plots.items()) + "</div>")
    out.append("<h3>Fairness settings</h3>" + _dl(s.fairness()))
    out.append("<h3>Timing beside training</h3>")
    out.append(_table(["Strategy", "Workers", "Start-up (s)", "Workers started by",
                       "Data loading (s)", "Comm (s)", "Comm measured by"],
                      [(c.status, [c.strategy, str(c.workers), fmt_s(c.startup_s),
                                   c.worker_start or "–", fmt_s(c.data_s), fmt_s(c.comm_s),
                                   c.comm_method or "–"])
                       for c in s.cells], 6))
    out.append("<h3>Environment</h3>")
    envs = [{**e, "scheduler": e.get("scheduler") or "none"} for e in s.envs]
    if envs:
        out.append(_dl(envs[0]))
    for env in envs[1:]:
        # Usually a new git commit mid-study: show only what differs from the first.
        differs = {k: v for k, v in env.items() if envs[0].get(k) != v}
        out.append("<p>Other runs of this setup differ in:</p>" + _dl(differs))
    return "\n".join(out)


def _runs_section(study: Study) -> str:
    rows = []
    for r in study.records:
        rows.append((str(r.get("status")), [
            str(r.get("started_at", "")), str(r.get("run_id", "")), str(r.get("strategy")),
            str(r.get("workers")), str(r.get("status")), fmt_s(r.get("train_s")),
            fmt_rate(r.get("samples_per_s")), fmt_pct(r.get("test_accuracy")),
            fmt_pct(r.get("comm_fraction")), str(r.get("error") or ""),
        ]))
    return "<h2>Every run</h2>" + _table(
        ["Started (UTC)", "Run", "Strategy", "Workers", "Status", "Train (s)", "Samples/s",
         "Test acc", "Comm %", "Error"], rows, 9)


def _commands(metas: list[dict[str, Any]]) -> str:
    if not metas:
        return ("<p>Not recorded: these records were written by <code>distbench run</code>, "
                "not by <code>distbench compare</code>.</p>")
    out = []
    for m in metas:
        for s in m.get("sessions", []):
            out.append(f"<pre>{escape(s.get('command', ''))}</pre>")
        if m.get("equivalent"):
            out.append("<p>With every setting spelled out:</p>"
                       f"<pre>{escape(m['equivalent'])}</pre>")
    return "\n".join(out)


def render(study: Study, plots: list[dict[str, Path]], metas: list[dict[str, Any]],
           sources: list[str], notes: list[str] | None = None) -> str:
    """The whole page; `plots[i]` belongs to `study.setups[i]`."""
    times = sorted(str(r.get("started_at", "")) for r in study.records)
    span = f"{times[0]} to {times[-1]}" if times else "no records"
    ok = sum(1 for r in study.records if r.get("status") == "ok")
    body = [
        "<h1>distbench comparison</h1>",
        f"<p>{len(study.records)} runs ({ok} successful) from {escape(', '.join(sources))}, "
        f"started {escape(span)}.</p>",
        "<h2>Command</h2>", _commands(metas),
    ]
    if notes:
        body.append('<ul class="study">' + "".join(f"<li>{escape(n)}</li>" for n in notes)
                    + "</ul>")
    for s, p in zip(study.setups, plots, strict=True):
        body.append(_setup_section(s, p))
    body.append(_runs_section(study))
    body.append(f"<footer>distbench {escape(__version__)}; rebuilt from the JSON records by "
                f"<code>distbench report {escape(' '.join(sources))}</code>.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>distbench comparison</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")

