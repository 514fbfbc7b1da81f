"""Tables, plots and the HTML report, rebuilt from run records alone. Imports results,
strategies (facts only), system and core; never a framework (matplotlib only inside plots).

Command: distbench report results/<timestamp>/ [more results dirs ...]

`build_report` is what both `distbench compare` (at the end) and `distbench report` call: load and
merge the records, analyse them, and write summary.csv, summary.md, the PNG plots and
report.html. The same records always give the same files. `load_report` is its reading half,
which writes nothing: `distbench.report(DIR)` shows the same analysis in a notebook.
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


@dataclass
class Loaded:
    """The records of some results directories, analysed: what every view of them starts from."""

    records: list[dict[str, Any]]
    metas: list[dict[str, Any]]  # their compare.json files
    study: Study  # without the runs compare replaced (contended, run again)
    notes: list[str]
    unreadable: list[str]  # one line per compare.json that could not be read


def load_report(dirs: list[str | Path]) -> Loaded:
    """Load, merge and analyse the records in `dirs`; writes nothing."""
    from distbench.report.study_notes import replaced_runs, study_notes

    records = load_dirs(dirs)
    metas, unreadable = read_metas(list(dirs))
    replaced = replaced_runs(metas)
    study = analyse([r for r in records if str(r.get("run_id")) not in replaced])
    return Loaded(records, metas, study, study_notes(metas), unreadable)


def build_report(dirs: list[str | Path], out: str | Path, plots: bool = True) -> Report:
    """Write every output for the records in `dirs` into `out`; returns what was written."""
    from distbench.report import html, tables
    from distbench.report.plots import MATPLOTLIB_MISSING, plot_suffix
    from distbench.results.records import RUNS_FILE

    loaded = load_report(dirs)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(loaded.study, out_dir, notes=loaded.notes)
    inputs = {Path(d).resolve() for d in dirs}
    if out_dir.resolve() not in inputs:
        # A merged report keeps its merged records, so it can itself be rebuilt later.
        _write(report, out_dir / RUNS_FILE, "".join(
            json.dumps(r, sort_keys=True, default=str) + "\n" for r in loaded.records))
    _write(report, out_dir / "summary.csv", tables.csv_text(report.study))
    _write(report, out_dir / "summary.md", tables.markdown(report.study, report.notes))
    plot_paths: list[dict[str, Path]] = [{} for _ in report.study.setups]
    if plots and importlib.util.find_spec("matplotlib") is None:
        report.skipped.append(MATPLOTLIB_MISSING)
    elif plots:
        from distbench.report.plots import write_plots

        for i, s in enumerate(report.study.setups):
            plot_paths[i] = write_plots(s, out_dir, plot_suffix(i, len(report.study.setups)))
            report.files += plot_paths[i].values()
    sources = sorted({Path(d).resolve().name for d in dirs})
    report.skipped += loaded.unreadable
    page = html.render(report.study, plot_paths, loaded.metas, sources, report.notes)
    _write(report, out_dir / "report.html", page)
    return report


def _write(report: Report, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    report.files.append(path)
