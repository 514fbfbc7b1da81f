"""`report` and `diff` on records the schema accepts but a careless reader would crash on (nulls,
a zero time, markup in a name), a hand-edited compare.json, and a report that fails half-way.

Command: python -m pytest tests/unit/report/test_hostile_records.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from distbench.cli.main import main
from distbench.report import build_report, staging_name, tables
from distbench.results.records import append_record

from helpers import rec


def write_dir(path: Path, records: list[dict[str, Any]]) -> Path:
    for r in records:
        append_record(path, r)
    return path


def test_report_shows_nulls_the_schema_allows(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    records = [rec(train_samples=4000, test_samples=None, classes=None, epoch_s=[None, 1.0]),
               rec("ddp", 2, 6.0, train_samples=4000, test_samples=1000, classes=10,
                   epoch_s=[3.0, None])]
    src = write_dir(tmp_path / "runs", records)
    assert main(["report", str(src), "--out", str(tmp_path / "out")]) == 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "4,000 training and ? test samples" in summary
    assert "4,000 training and 1,000 test samples" in summary


def test_diff_of_a_zero_time_is_refused_with_the_reason(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    old = write_dir(tmp_path / "old", [rec(train_s=0.0)])
    new = write_dir(tmp_path / "new", [rec(train_s=1.0)])
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == [] and "old median training time is 0 s" in doc["refused"][0]


def test_diff_shows_markup_in_names_literally(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    runs = write_dir(tmp_path / "runs", [rec("single[/bold][red]")])
    assert main(["diff", str(runs), str(runs)]) == 0
    assert "single[/bold][red] ×1" in capsys.readouterr().out


def test_a_hand_edited_noise_measurement_is_shown_without_its_time(tmp_path: Path) -> None:
    src = write_dir(tmp_path / "runs", [rec()])
    (src / "compare.json").write_text(json.dumps({"sessions": [
        {"command": "x", "noise_before": {"cv": 0.01, "mean_s": "abc"}},
        {"command": "y", "noise_after": {"cv": 10**400, "mean_s": 1e-3}}]}))
    report = build_report([src], tmp_path / "out", plots=False)
    assert report.notes == ["machine noise before the runs: CV 1.0% of a fixed (unknown time) "
                            "kernel"]


def test_a_failed_report_leaves_the_folder_as_it_was(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_dir(tmp_path / "runs", [rec()])
    before = {p.name: p.read_bytes() for p in src.iterdir()}

    def boom(*args: Any) -> str:
        raise RuntimeError("failed while writing summary.md")

    monkeypatch.setattr(tables, "markdown", boom)
    for out in (src, tmp_path / "new"):
        with pytest.raises(RuntimeError):
            build_report([src], out, plots=False)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # no summary.csv, no temp
    assert not (tmp_path / "new").exists()


def test_a_killed_reports_staging_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    """Only this host's folders whose process is gone: not a live report's, not another host's
    (one whose name extends this host's too), and a link named like one is neither followed nor
    removed."""
    src = write_dir(tmp_path / "runs", [rec()])
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its PID names no process now
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    dead = staging_name(gone.pid)
    host = dead.removesuffix(f"-{gone.pid}")
    names = {"killed": f"{dead}-abc", "live": f"{staging_name(os.getpid())}-abc",
             "other host": f".report-elsewhere.invalid-{gone.pid}-abc",
             "longer host": f"{host}-5-{gone.pid}-abc", "link": f"{dead}-link"}
    for key, name in names.items():
        if key == "link":
            (src / name).symlink_to(outside, target_is_directory=True)
        else:
            (src / name / "half").mkdir(parents=True)
    build_report([src], src, plots=False)
    left = {p.name for p in src.iterdir()}
    assert names["killed"] not in left
    assert {names[k] for k in ("live", "other host", "longer host", "link")} <= left
    assert (outside / "keep").is_dir()
    assert not [n for n in left if n.startswith(".report-") and n not in names.values()]
