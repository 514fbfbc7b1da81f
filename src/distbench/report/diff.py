"""`distbench diff OLD NEW`: benchstat for runs. Did a change make a cell faster, slower, or
nothing that can be told from noise?

Command: distbench diff results/before results/after [--format md|json] [--fail-on-regression 5%]

Cells are matched by strategy, workers, dataset and model. For each match: the old and new median
training time, the change in %, the p-value of a two-sided Mann-Whitney U test and "~" where it
is not significant (p > 0.05), as benchstat prints. Cells present on one side only are listed,
never dropped. A matched pair that differs in a fairness setting (batch, epochs, threads,
optimizer, device, or the framework versions) is refused with the reason: its times measure two
different things. Library upgrades are a reason to diff, so `--across-versions` accepts pairs that
differ only in versions, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from distbench.report.stats import mann_whitney_p, median_interval
from distbench.system.timing import median

ALPHA = 0.05
# Settings that must be equal for two cells' times to be compared (record key -> label).
FAIRNESS = {"global_batch": "global batch", "epochs": "epochs", "threads_per_worker": "threads",
            "optimizer": "optimizer", "lr": "learning rate", "scaling": "scaling"}
VERSIONS = ("torch", "tensorflow", "python", "mpi_library")

CellKey = tuple[str, int, str, str]


@dataclass
class Row:
    cell: str
    old_median_s: float
    new_median_s: float
    change: float  # (new - old) / old: negative is faster
    p_value: float | None
    significant: bool
    n_old: int
    n_new: int
    old_ci_rel: float | None = None
    new_ci_rel: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Diff:
    rows: list[Row]
    only_old: list[str]
    only_new: list[str]
    refused: list[str]

    def regressions(self, threshold: float) -> list[Row]:
        return [r for r in self.rows if r.significant and r.change > threshold]


def _key(r: dict[str, Any]) -> CellKey:
    return (str(r.get("strategy")), int(r.get("workers") or 1), str(r.get("dataset")),
            str(r.get("model")))


def label(key: CellKey) -> str:
    strategy, workers, dataset, model = key
    return f"{strategy} ×{workers} · {dataset}/{model}"


def _group(records: Sequence[dict[str, Any]]) -> dict[CellKey, list[dict[str, Any]]]:
    out: dict[CellKey, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("status") == "ok" and isinstance(r.get("train_s"), (int, float)):
            out.setdefault(_key(r), []).append(r)
    return out


def _settings(runs: list[dict[str, Any]], keys: Sequence[str], env: bool) -> dict[str, set[str]]:
    return {k: {json.dumps((r.get("env") or {}).get(k) if env else r.get(k)) for r in runs}
            for k in keys}


def unfair(old: list[dict[str, Any]], new: list[dict[str, Any]],
           across_versions: bool) -> tuple[str | None, list[str]]:
    """(reason to refuse, notes) for one matched pair of cells."""
    a, b = _settings(old, list(FAIRNESS), False), _settings(new, list(FAIRNESS), False)
    for k, name in FAIRNESS.items():
        if a[k] != b[k]:
            return f"{name} differs ({', '.join(sorted(a[k]))} → {', '.join(sorted(b[k]))})", []
    va, vb = _settings(old, VERSIONS, True), _settings(new, VERSIONS, True)
    changed = [f"{k} {'/'.join(sorted(va[k]))} → {'/'.join(sorted(vb[k]))}"
               for k in VERSIONS if va[k] != vb[k]]
    if changed and not across_versions:
        return f"versions differ ({'; '.join(changed)}); pass --across-versions to compare", []
    return None, [f"versions differ: {c}" for c in changed]


def diff_records(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]],
                 across_versions: bool = False) -> Diff:
    a, b = _group(old), _group(new)
    rows, refused = [], []
    for key in sorted(set(a) & set(b)):
        reason, notes = unfair(a[key], b[key], across_versions)
        if reason:
            refused.append(f"{label(key)}: {reason}")
            continue
        ta = [float(r["train_s"]) for r in a[key]]
        tb = [float(r["train_s"]) for r in b[key]]
        p = mann_whitney_p(ta, tb)
        ma, mb = median(ta), median(tb)
        if ma <= 0:  # hand-made or broken records: a change relative to no time is undefined
            refused.append(f"{label(key)}: old median training time is {ma:.3g} s, not > 0")
            continue
        ca, cb = median_interval(ta), median_interval(tb)
        rows.append(Row(label(key), ma, mb, (mb - ma) / ma, p, p is not None and p <= ALPHA,
                        len(ta), len(tb), ca.half_width_rel(ma) if ca else None,
                        cb.half_width_rel(mb) if cb else None, notes))
    return Diff(rows, [label(k) for k in sorted(set(a) - set(b))],
                [label(k) for k in sorted(set(b) - set(a))], refused)


def _verdict(r: Row) -> str:
    stats = f"p={r.p_value:.3f} n={r.n_old}+{r.n_new}" if r.p_value is not None else \
        f"n={r.n_old}+{r.n_new}: too few runs to test"
    return f"{r.change:+.1%} ({stats})" if r.significant else f"~ ({stats})"


def _spread(v: float | None) -> str:
    return f" ±{v:.0%}" if v is not None else ""


def markdown(d: Diff) -> str:
    lines = ["| cell | old median | new median | change |", "|---|---:|---:|---|"]
    for r in d.rows:
        lines.append(f"| {r.cell} | {r.old_median_s:.3g} s{_spread(r.old_ci_rel)} | "
                     f"{r.new_median_s:.3g} s{_spread(r.new_ci_rel)} | {_verdict(r)} |")
    lines += _tails(d)
    return "\n".join(lines) + "\n"


def _tails(d: Diff) -> list[str]:
    out = [""] if d.only_old or d.only_new or d.refused else []
    out += [f"only in OLD: {c}" for c in d.only_old]
    out += [f"only in NEW: {c}" for c in d.only_new]
    out += [f"not compared: {c}" for c in d.refused]
    out += [f"note: {r.cell}: {n}" for r in d.rows for n in r.notes]
    return out


def to_json(d: Diff) -> str:
    return json.dumps({"alpha": ALPHA, "rows": [asdict(r) for r in d.rows],
                       "only_old": d.only_old, "only_new": d.only_new, "refused": d.refused},
                      indent=2) + "\n"


def print_terminal(d: Diff, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="distbench diff: median training time, OLD → NEW", title_justify="left")
    for name, justify in (("cell", "left"), ("old", "right"), ("new", "right"),
                          ("change", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in d.rows:  # Text: a cell's name comes from the records, shown literally, never markup
        table.add_row(*(Text(v) for v in (r.cell, f"{r.old_median_s:.3g} s{_spread(r.old_ci_rel)}",
                                          f"{r.new_median_s:.3g} s{_spread(r.new_ci_rel)}",
                                          _verdict(r))))
    console.print(table)
    for line in _tails(d):
        console.print(line, highlight=False, markup=False)
