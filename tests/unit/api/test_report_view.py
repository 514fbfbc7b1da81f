"""`distbench.report(DIR)` and the frames `run`/`compare` return: DataFrames and plain Figures.

Command: python -m pytest tests/unit/api/test_report_view.py

From hand-made records, in process: no run, and nothing written into the results folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

import distbench
from distbench.api.frames import records_frame
from distbench.report import build_report
from distbench.report.plots import png_bytes
from distbench.results.records import append_record

from helpers import study_records


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    for record in study_records():
        append_record(folder, record)
    return folder


def test_the_view_holds_the_summary_and_the_figures_and_writes_nothing(results: Path) -> None:
    before = sorted(p.name for p in results.iterdir())
    view = distbench.report(results)
    assert sorted(p.name for p in results.iterdir()) == before
    assert isinstance(view.summary, pd.DataFrame) and len(view.summary) > 0
    assert {"strategy", "workers", "train_s_median"} <= set(view.summary.columns)
    assert {"train_time", "speedup", "accuracy_time", "compute_comm"} <= set(view.figures)
    assert all(type(fig) is Figure for fig in view.figures.values())
    html = view._repr_html_()
    assert "<table" in html and html.count("data:image/png;base64,") == len(view.figures)


def test_the_view_shows_what_distbench_report_writes(results: Path, tmp_path: Path) -> None:
    view = distbench.report(results)
    written = build_report([results], tmp_path / "report")
    with (written.out / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(view.summary.columns) == list(rows[0])
    assert list(view.summary["strategy"]) == [r["strategy"] for r in rows]
    for name, fig in view.figures.items():
        assert png_bytes(fig) == (written.out / f"{name}.png").read_bytes(), name


def test_plots_leave_no_pyplot_figure_behind(results: Path) -> None:
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    distbench.report(results)
    assert plt.get_fignums() == open_before


def test_a_frame_knows_its_results_folder(results: Path) -> None:
    frame = records_frame(study_records(), results)
    assert frame.attrs["out"] == str(results) and frame.distbench.out == results
    assert frame.head(2).distbench.out == results  # kept through pandas operations
    assert {"strategy", "workers", "train_s", "status"} <= set(frame.columns)
    assert set(frame.distbench.report().figures) == set(distbench.report(results).figures)
    with pytest.raises(AttributeError, match="carries no results folder"):
        _ = pd.DataFrame({"a": [1]}).distbench.out


def test_a_folder_without_records_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(distbench.api.UsageError, match="no runs.jsonl in"):
        distbench.report(tmp_path)


def test_the_report_package_is_what_distbench_report_calls(results: Path) -> None:
    """`distbench.report` names the subpackage too: importing it keeps it callable."""
    import distbench.report.tables
    from distbench import report

    assert report is distbench.report and callable(report)
    assert report.tables is distbench.report.tables
    assert set(report(results).figures) == set(distbench.api.report(results).figures)
