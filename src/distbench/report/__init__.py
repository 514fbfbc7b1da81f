"""Tables, plots and the HTML report, rebuilt from run records alone. Imports results,
strategies (facts only), system and core; never a framework (matplotlib only inside plots).

Command: distbench report results/<timestamp>/ [more results dirs ...]

`build_report` is what both `distbench compare` (at the end) and `distbench report` call: load and
merge the records, analyse them, and write summary.csv, summary.md, the PNG plots and
report.html. The same records always give the same files.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distbench.report.analysis import Study, analyse, load_dirs

COMPARE_FILE = "compare.json"


@dataclass
class Report:
    study: Study
    out: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the studies' own: noise, reruns, repeats


def _meta_problem(meta: Any) -> str | None:
    """Why a parsed compare.json cannot be shown, if it cannot: the page reads its commands."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    sessions = meta.get("sessions", [])
    if not isinstance(sessions, list) or not all(
            isinstance(s, dict) and isinstance(s.get("command", ""), str) for s in sessions):
        return "'sessions' is not a list of commands"
    if not isinstance(meta.get("equivalent", ""), str):
        return "'equivalent' is not a string"
    return None


def read_metas(dirs: list[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """The compare.json of each directory that has one (the commands that made the records), in
    an order of their own, so that `report A B` and `report B A` write the same page; and one
    line for each compare.json that could not be read (the report goes on without it)."""
    metas, skipped = [], []
    for d in dirs:
        path = Path(d) / COMPARE_FILE
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            skipped.append(f"{path}: not readable JSON ({type(exc).__name__}: {exc})")
            continue
        problem = _meta_problem(meta)
        if problem:
            skipped.append(f"{path}: {problem}")
        else:
            metas.append(meta)
    return sorted(metas, key=lambda m: json.dumps(m, sort_keys=True, default=str)), skipped


def build_report(dirs: list[str | Path], out: str | Path, plots: bool = True) -> Report:
    """Write every output for the records in `dirs` into `out`; returns what was written."""
    from distbench.core.errors import UsageError
    from distbench.report import html, tables
    from distbench.report.study_notes import replaced_runs, study_notes
    from distbench.results.records import RUNS_FILE

    records = load_dirs(dirs)
    metas, unreadable = read_metas(list(dirs))
    replaced = replaced_runs(metas)
    out_dir = Path(out)
    # The folders whose records are read (a runs.jsonl given directly stands for its folder).
    inputs = {(p.parent if p.is_file() else p).resolve() for p in map(Path, dirs)}
    merged = out_dir.resolve() not in inputs
    if merged and (out_dir / RUNS_FILE).exists():
        raise UsageError(f"--out {out}: it holds a {RUNS_FILE} of its own, which the merged one "
                         "would replace; add it to the inputs or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(analyse([r for r in records if str(r.get("run_id")) not in replaced]),
                    out_dir, notes=study_notes(metas))
    if merged:
        # A merged report keeps its merged records, so it can itself be rebuilt later.
        _write(report, out_dir / RUNS_FILE,
               "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records))
    _write(report, out_dir / "summary.csv", tables.csv_text(report.study))
    _write(report, out_dir / "summary.md", tables.markdown(report.study, report.notes))
    plot_paths: list[dict[str, Path]] = [{} for _ in report.study.setups]
    if plots and importlib.util.find_spec("matplotlib") is None:
        report.skipped.append(
            'plots: matplotlib is not installed (pip install "distbench[report]")')
    elif plots:
        from distbench.report.plots import write_plots

        many = len(report.study.setups) > 1
        for i, s in enumerate(report.study.setups):
            plot_paths[i] = write_plots(s, out_dir, f"-{i + 1}" if many else "")
            report.files += plot_paths[i].values()
    sources = sorted({Path(d).resolve().name for d in dirs})
    report.skipped += unreadable
    page = html.render(report.study, plot_paths, metas, sources, report.notes)
    _write(report, out_dir / "report.html", page)
    return report


def _write(report: Report, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    report.files.append(path)
