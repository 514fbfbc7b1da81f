"""Where a report's records come from: the results folders, their compare.json, the analysis.

Command: distbench report results/<timestamp>/ [more results dirs ...]

`load_report` reads and analyses, and writes nothing; `build_report` (the files) and the
notebook view (`report.view`) both start from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distbench.report.analysis import Study, analyse, load_dirs

COMPARE_FILE = "compare.json"


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
