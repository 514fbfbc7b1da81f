"""The summary as markdown (summary.md), CSV (summary.csv) and a rich terminal table.

Command: distbench report results/<timestamp>/

All three show the same rows with the same formatting, so a number read in the terminal is the
number in the file. Output depends on the records only (no clock, no locale), which is what makes
`distbench report` reproducible.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from distbench.report.analysis import CellStats, SetupSummary, Study

DASH = "–"
HEADERS = ["Strategy", "Workers", "Training time (s) median [95% CI]", "Speedup [95% CI]",
           "Efficiency", "Samples/s", "Test acc", "Comm %"]
NOT_SIGNIFICANT = "≈ baseline (not significant)"


# --------------------------------------------------------------------------- number formats


def fmt_s(v: float | None) -> str:
    """Seconds to about three significant digits, trailing zeros kept, never in exponent form."""
    if v is None:
        return DASH
    if v == 0:
        return "0"
    for limit, digits in ((100, 0), (10, 1), (1, 2), (0.001, 3)):
        if abs(v) >= limit:
            return f"{v:.{digits}f}"
    return "<0.001"


def fmt_x(v: float | None) -> str:
    return DASH if v is None else f"{v:.2f}×"


def fmt_pct(v: float | None, digits: int = 1) -> str:
    return DASH if v is None else f"{v:.{digits}%}"


def fmt_rate(v: float | None) -> str:
    return DASH if v is None else f"{v:,.0f}"


def fmt_time_cell(c: CellStats) -> str:
    if c.train_median is None:
        return f"{c.status}: {c.reason}" if c.reason else c.status
    if c.train_ci is None:
        return f"{fmt_s(c.train_median)} (1 run)"
    return f"{fmt_s(c.train_median)} [{fmt_s(c.train_ci.low)}–{fmt_s(c.train_ci.high)}]"


def fmt_speedup(c: CellStats, baseline: CellStats | None) -> str:
    """The ratio with its interval; never a bare number where the interval holds 1.0."""
    if c.speedup is None:
        return DASH
    mark = " ⚠" if c.warnings else ""
    if c is baseline:
        return "1.00× (baseline)"
    if c.speedup_ci is None:
        return f"{fmt_x(c.speedup)} (1 run: untested){mark}"
    if c.speedup_ci.contains(1.0):
        return NOT_SIGNIFICANT + mark
    return f"{fmt_x(c.speedup)} [{c.speedup_ci.low:.2f}–{c.speedup_ci.high:.2f}]{mark}"


def fmt_efficiency(c: CellStats) -> str:
    if c.efficiency is None:
        return DASH
    core = f" (core {fmt_pct(c.core_efficiency, 0)})" if c.core_efficiency is not None else ""
    return fmt_pct(c.efficiency, 0) + core


def fmt_acc(c: CellStats) -> str:
    if c.test_acc_median is None:
        return DASH
    if c.ok > 1 and c.test_acc_min is not None:
        return f"{fmt_pct(c.test_acc_median)} (min {fmt_pct(c.test_acc_min)})"
    return fmt_pct(c.test_acc_median)


def fmt_target(c: CellStats) -> str:
    if not c.ok:
        return DASH
    if c.time_to_target is None:
        return "not reached"
    if c.target_reached < c.ok:
        return f"{fmt_s(c.time_to_target)} ({c.target_reached}/{c.ok} runs)"
    return fmt_s(c.time_to_target)


def fmt_delta(c: CellStats) -> str:
    """Accuracy against the exact twin, in percentage points; '(exact)' for uncompressed rows."""
    if c.compression == "none":
        return "(exact)" if c.exact else DASH
    return DASH if c.acc_delta is None else f"{100 * c.acc_delta:+.2f} pts"


def fmt_memory(c: CellStats) -> str:
    """Model state of the rank holding the most, and its peak RSS, in MB."""
    if c.state_mb is None:
        return DASH
    rss = f", RSS {c.rss_mb:,.0f}" if c.rss_mb is not None else ""
    return f"{c.state_mb:,.1f}{rss}"


def fmt_target_delta(c: CellStats) -> str:
    """Time to accuracy, with a compressed cell's accuracy loss beside it."""
    lost = c.compression != "none" and c.acc_delta is not None and c.acc_delta < 0
    return fmt_target(c) + (f" (acc {fmt_delta(c)} vs exact)" if lost else "")


def row(c: CellStats, baseline: CellStats | None = None) -> list[str]:
    """The summary.md columns of one cell, in HEADERS order."""
    return [c.strategy, str(c.workers), fmt_time_cell(c), fmt_speedup(c, baseline),
            fmt_efficiency(c), fmt_rate(c.samples_per_s), fmt_acc(c), fmt_pct(c.comm_fraction)]


def columns(summary: SetupSummary) -> tuple[list[str], Callable[[CellStats], list[str]]]:
    """Headers and row function for one setup: the fixed columns, then the optional ones."""
    headers = list(HEADERS)
    extra: list[Callable[[CellStats], str]] = []
    compressed = any(c.compression != "none" for c in summary.cells)
    if summary.target is not None:
        headers.append(f"Time to {summary.target:.0%} acc (s)")
        extra.append(fmt_target_delta if compressed else fmt_target)
    if compressed:
        headers.append("Acc Δ vs exact")
        extra.append(fmt_delta)
    if any(c.state_mb is not None for c in summary.cells):
        headers.append("Model state MB/rank (max rank), peak RSS MB")
        extra.append(fmt_memory)
    if any(c.ok != c.runs for c in summary.cells):
        headers.append("Runs ok")
        extra.append(lambda c: f"{c.ok}/{c.runs}")
    if any(c.contended for c in summary.cells):
        headers.append("Contended")
        extra.append(lambda c: f"{c.contended}/{c.ok}" if c.ok else DASH)
    return headers, lambda c: row(c, summary.baseline) + [f(c) for f in extra]


def framework_rows(summary: SetupSummary) -> list[list[str]]:
    """The second view: rows of a non-PyTorch framework against that framework's baseline."""
    return [[c.strategy, str(c.workers), c.framework_baseline or DASH, fmt_x(c.speedup_fw),
             fmt_pct(c.efficiency_fw, 0)]
            for c in summary.cells if c.framework_baseline]


def cell_notes(summary: SetupSummary) -> list[str]:
    notes = list(summary.notes)
    for c in summary.cells:
        notes += [f"{c.strategy} ×{c.workers}: {n}" for n in c.notes]
    return notes


def verdict_lines(summary: SetupSummary) -> list[str]:
    from distbench.report.verdict import verdict

    return verdict(summary)


# --------------------------------------------------------------------------- markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_escape(v) for v in r) + " |" for r in rows]
    return lines


def markdown(study: Study, notes: list[str] | None = None) -> str:
    """summary.md: one section per setup, in the published studies' column order."""
    out: list[str] = ["# distbench comparison", ""]
    if notes:
        out += [f"- {_md_escape(n)}" for n in notes] + [""]
    for s in study.setups:
        headers, make_row = columns(s)
        out += [f"## {s.setup.title()}", "", f"Workload: {_md_escape(s.workload())}", "",
                "**Verdict**", ""]
        out += [f"- {_md_escape(v)}" for v in verdict_lines(s)] + [""]
        out += _md_table(headers, [make_row(c) for c in s.cells])
        out += ["", f"Median over {_repeat_words(s)} per cell; [95% CI] is a bootstrap interval "
                "of the median (of the ratio of medians for speedups, resampling interleaved "
                f"rounds). A speedup whose interval holds 1.0 reads \"{NOT_SIGNIFICANT}\"; ⚠ "
                "marks a finding in the verdict. Speedup = median training time of `single` ×1 ÷ "
                "the cell's; efficiency = speedup ÷ workers (core: speedup ÷ (cores used ÷ the "
                "baseline's cores used))."]
        out += ["", fairness_line(s), "", machine_line(s)]
        fw = framework_rows(s)
        if fw:
            out += ["", "TensorFlow view (against the framework's own baseline):", ""]
            out += _md_table(["Strategy", "Workers", "Baseline", "Speedup", "Efficiency"], fw, 3)
        notes = cell_notes(s)
        if notes:
            out += ["", "Notes:", ""] + [f"- {_md_escape(n)}" for n in notes]
        out.append("")
    if not study.setups:
        out += ["No records.", ""]
    return "\n".join(out)


def fairness_line(s: SetupSummary) -> str:
    f = s.fairness()
    threads = ", ".join(f"{k} {v}" for k, v in f["threads per worker"].items())
    epochs = f"{f['epochs']} epoch{'s' if f['epochs'] != 1 else ''}"
    return (f"Fairness: {f['batch']} ({f['scaling']} scaling); threads per worker: {threads}; "
            f"{epochs}, {f['optimizer']}, seed {f['seed']}, warm-up steps "
            f"{f['warm-up steps']} (not timed).")


def machine_line(s: SetupSummary) -> str:
    env = s.envs[0] if s.envs else {}
    parts = [env.get("host"), env.get("cpu"),
             f"{env['cores']} cores" if env.get("cores") else None,
             f"{env['memory_gb']} GB" if env.get("memory_gb") else None,
             ", ".join(env.get("gpus") or []) or None, env.get("os"),
             f"Python {env['python']}" if env.get("python") else None,
             *(f"{k} {env[k]}" for k in ("torch", "tensorflow", "mpi4py") if env.get(k))]
    commits = sorted({str(e.get("git_commit"))[:10] for e in s.envs if e.get("git_commit")})
    more = (f" Records span {len(s.envs)} environment fingerprints (git commits "
            f"{', '.join(commits)}); see report.html." if len(s.envs) > 1 else "")
    return "Machine: " + ", ".join(str(p) for p in parts if p) + "." + more


def _repeat_words(s: SetupSummary) -> str:
    counts = sorted({c.ok for c in s.cells if c.ok})
    if not counts:
        return "no successful run"
    if len(counts) == 1:
        return f"{counts[0]} successful run{'s' if counts[0] != 1 else ''}"
    return f"{counts[0]}–{counts[-1]} successful runs"


# --------------------------------------------------------------------------- CSV

CSV_FIELDS = [
    "dataset", "model", "epochs", "batch", "scaling", "optimizer", "lr", "device", "host",
    "strategy", "framework", "workers", "threads_per_worker", "cores", "cores_used",
    "global_batch", "status", "runs", "ok", "failed", "interrupted", "train_s_median",
    "train_s_q1", "train_s_q3", "train_s_ci_low", "train_s_ci_high", "samples_per_s", "speedup",
    "speedup_ci_low", "speedup_ci_high", "efficiency", "core_efficiency",
    "framework_baseline", "speedup_vs_framework_baseline", "efficiency_vs_framework_baseline",
    "test_accuracy_median", "test_accuracy_min", "target_accuracy", "time_to_target_s_median",
    "target_reached_runs", "comm_fraction", "comm_s", "compute_s", "comm_method", "startup_s",
    "data_s", "contended_runs", "rank_skew", "error", "notes", "warnings", "compression",
    "exact", "accuracy_delta_vs_exact", "model_state_mb_max_rank", "peak_rss_mb_max_rank",
    "worker_start",
]


def _num(v: Any) -> Any:
    """Floats with 6 significant digits: stable text, more precision than any timing has."""
    return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)


def _bounds(ci: Any) -> tuple[float | None, float | None]:
    return (ci.low, ci.high) if ci is not None else (None, None)


def csv_text(study: Study) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for s in study.setups:
        for c in s.cells:
            st = c.setup
            values = [
                st.dataset, st.model, st.epochs, st.batch, st.scaling, st.optimizer, st.lr,
                st.device, st.host, c.strategy, c.framework, c.workers, c.threads_per_worker,
                c.cores, c.cores_used, c.global_batch, c.status, c.runs, c.ok, c.failed,
                c.interrupted, c.train_median, c.train_q1, c.train_q3,
                *(_bounds(c.train_ci)), c.samples_per_s, c.speedup, *(_bounds(c.speedup_ci)),
                c.efficiency, c.core_efficiency, c.framework_baseline, c.speedup_fw,
                c.efficiency_fw, c.test_acc_median, c.test_acc_min, s.target, c.time_to_target,
                c.target_reached, c.comm_fraction, c.comm_s, c.compute_s, c.comm_method,
                c.startup_s, c.data_s, c.contended, c.rank_skew, c.reason, "; ".join(c.notes),
                "; ".join(c.warnings), c.compression, c.exact, c.acc_delta, c.state_mb,
                c.rss_mb, c.worker_start,
            ]
            w.writerow([_num(v) for v in values])
    return buf.getvalue()


# --------------------------------------------------------------------------- terminal


def print_terminal(study: Study, console: Any = None, notes: list[str] | None = None) -> None:
    """The rich table printed at the end of compare and report."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = console or Console(highlight=False)
    if not console.is_terminal:
        # Captured output (CI logs, files) would otherwise wrap the table at 80 columns.
        console = Console(file=console.file, width=max(console.width, 160), highlight=False)
    for n in notes or []:
        console.print(f"[bold]study:[/bold] {escape(n)}", highlight=False)
    for s in study.setups:
        headers, make_row = columns(s)
        console.print(f"[bold]{escape(s.setup.title())}[/bold]", highlight=False)
        console.print(f"[bold]workload:[/bold] {escape(s.workload())}", highlight=False)
        for line in verdict_lines(s):
            console.print(f"[bold]verdict:[/bold] {escape(line)}", highlight=False)
        table = Table(title=s.setup.title(), title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i == 0 else "right",
                             overflow="fold", max_width=48 if i == 2 else None)
        for c in s.cells:
            style = None if c.status == "ok" else "red" if c.status == "failed" else "yellow"
            table.add_row(*(Text(v) for v in make_row(c)), style=style)
        console.print(table)
        for n in cell_notes(s):
            console.print(f"[dim]note:[/dim] {escape(n)}", highlight=False)
