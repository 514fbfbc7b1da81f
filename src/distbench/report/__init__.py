"""Tables, plots and the HTML report, rebuilt from run records alone. Imports results,
strategies (facts only), system and core; never a framework (matplotlib only inside plots).

Command: distbench report results/<timestamp>/ [more results dirs ...]

`build_report` is what both `distbench compare` (at the end) and `distbench report` call: load and
merge the records, analyse them, and write summary.csv, summary.md, the PNG plots and
report.html. The same records always give the same files. Its reading half, which writes
nothing, is `report.sources.load_report`.

Called, this package is the notebook view of a report: `distbench.report(DIR, ...)` returns the
summary as a DataFrame and the plots as matplotlib Figures (`report.view`). `distbench.report`
is the package's name, so the package itself is what a caller gets there, whether or not it was
imported before, and it is made callable rather than shadowed by a function of that name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from distbench.report.analysis import Study
from distbench.report.sources import COMPARE_FILE, Loaded, load_report

if TYPE_CHECKING:
    from distbench.report.view import ReportView

__all__ = ["COMPARE_FILE", "Report", "build_report", "load_report"]


@dataclass
class Report:
    study: Study
    out: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the studies' own: noise, reruns, repeats


def build_report(dirs: list[str | Path], out: str | Path, plots: bool = True) -> Report:
    """Write every output for the records in `dirs` into `out`; returns what was written.

    All or nothing: the files are made in a hidden folder inside `out` (the same file system, so
    a rename places them) and moved into place only once every one was made, so a failure leaves
    `out` as it was, never a new summary beside an old report.html. A report killed before it
    could remove that folder leaves it behind, and the next report on the host removes it.
    """
    from distbench.core.errors import UsageError
    from distbench.results.records import RUNS_FILE

    loaded = load_report(dirs)
    out_dir = Path(out)
    # The folders whose records are read (a runs.jsonl given directly stands for its folder).
    inputs = {(p.parent if p.is_file() else p).resolve() for p in map(Path, dirs)}
    merged = out_dir.resolve() not in inputs
    if merged and (out_dir / RUNS_FILE).exists():
        raise UsageError(f"--out {out}: it holds a {RUNS_FILE} of its own, which the merged one "
                         "would replace; add it to the inputs or choose another --out")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(loaded.study, out_dir, notes=loaded.notes)
    remove_abandoned_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{staging_name(os.getpid())}-", dir=out_dir))
    try:
        _render(report, loaded, dirs, staging, plots, merged)
        report.files = [path.replace(out_dir / path.name) for path in report.files]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out_dir.iterdir()):  # failed before anything was placed
            out_dir.rmdir()
    return report


def staging_name(pid: int) -> str:
    """The name of a staging folder that the report in process `pid` on this host makes, before
    mkdtemp's random part: a later report tells one a killed report left behind from one a live
    report writes into."""
    return f".report-{socket.gethostname()}-{pid}"


def remove_abandoned_staging(out_dir: Path) -> None:
    """Remove the staging folders that reports on this host left in `out_dir` when they were
    killed before their own cleanup (SIGKILL, the out-of-memory killer): those whose process is
    gone. Another host's (a shared file system), a live process's, and links are left alone.
    The name is read from the right (mkdtemp's random part has no "-"), so a host whose name
    extends this one's, `node-5` beside `node`, is another host."""
    for entry in out_dir.iterdir():
        head, _, _ = entry.name.rpartition("-")
        _, _, pid = head.rpartition("-")
        if (pid.isdigit() and head == staging_name(int(pid)) and not entry.is_symlink()
                and entry.is_dir() and not _process_exists(int(pid))):
            shutil.rmtree(entry, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    """Whether a process with this PID runs on this host (another user's counts; a number too
    large to be a PID counts too, so nothing is removed on a guess)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _render(report: Report, loaded: Loaded, dirs: list[str | Path], staging: Path,
            plots: bool, merged: bool) -> None:
    """Every file of the report, into `staging`; `report.files` lists them."""
    from distbench.report import html, tables
    from distbench.report.plots import MATPLOTLIB_MISSING, plot_suffix
    from distbench.results.records import RUNS_FILE

    if merged:
        # A merged report keeps its merged records, so it can itself be rebuilt later.
        _write(report, staging / RUNS_FILE, "".join(
            json.dumps(r, sort_keys=True, default=str) + "\n" for r in loaded.records))
    _write(report, staging / "summary.csv", tables.csv_text(report.study))
    _write(report, staging / "summary.md", tables.markdown(report.study, report.notes))
    plot_paths: list[dict[str, Path]] = [{} for _ in report.study.setups]
    if plots and importlib.util.find_spec("matplotlib") is None:
        report.skipped.append(MATPLOTLIB_MISSING)
    elif plots:
        from distbench.report.plots import write_plots

        for i, s in enumerate(report.study.setups):
            plot_paths[i] = write_plots(s, staging, plot_suffix(i, len(report.study.setups)))
            report.files += plot_paths[i].values()
    sources = sorted({Path(d).resolve().name for d in dirs})
    report.skipped += loaded.unreadable
    page = html.render(report.study, plot_paths, loaded.metas, sources, report.notes)
    _write(report, staging / "report.html", page)


def _write(report: Report, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    report.files.append(path)


class _ReportPackage(types.ModuleType):
    """This package, callable: `distbench.report(DIR, ...)` is `report.view.view(DIR, ...)`."""

    def __call__(self, *dirs: str | os.PathLike[str]) -> ReportView:
        from distbench.report.view import view

        return view(*dirs)


sys.modules[__name__].__class__ = _ReportPackage
