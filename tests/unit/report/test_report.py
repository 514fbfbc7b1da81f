"""`distbench report`: the files it writes, their determinism, and merging.

Command: python -m pytest tests/unit/report/test_report.py
"""

from __future__ import annotations

import csv
import json

from distbench.cli.main import main
from distbench.report import build_report
from distbench.report.tables import HEADERS
from distbench.results.records import append_record, load_records

from helpers import rec, study_records

OUTPUTS = ("summary.csv", "summary.md", "report.html", "train_time.png", "speedup.png",
           "accuracy_time.png", "compute_comm.png")


def write_dir(path, records):
    for r in records:
        append_record(path, r)
    return path


def test_same_records_give_the_same_files(tmp_path):
    src = write_dir(tmp_path / "runs", study_records())
    build_report([src], tmp_path / "one")
    build_report([src], tmp_path / "two")
    for name in OUTPUTS:
        one, two = (tmp_path / d / name for d in ("one", "two"))
        assert one.read_bytes() == two.read_bytes(), name


def test_summary_md_has_the_published_columns_failures_and_views(tmp_path):
    src = write_dir(tmp_path / "runs", study_records())
    build_report([src], src)
    md = (src / "summary.md").read_text()
    assert "| " + " | ".join(HEADERS) + " |" in md
    # Runs 10, 11, 12 s: the bootstrap interval of a median of three runs spans their range.
    assert "| single | 1 | 11.0 [10.0–12.0] | 1.00× (baseline) | 100% (core 100%) | 727 |" in md
    # ddp x1 (9, 10, 11 s) against single (10, 11, 12 s): the interval holds 1.0.
    assert "| ddp | 1 | 10.0 [9.00–11.0] | ≈ baseline (not significant) |" in md
    # ddp x2 on the baseline's 2 cores at 1.83x: super-linear per core, flagged.
    assert "| ddp | 2 | 6.00 [5.00–7.00] | 1.83× [1.57–2.00] ⚠ | 92% (core 183%) | 1,333 | " \
           "90.0% (min 90.0%) | 25.0% | 3/3 |" in md
    assert "**Verdict**" in md and "2 workers: fastest is `ddp`" in md
    assert "super-linear per core" in md
    assert "| mpi | 2 | failed: rank 1 exited with code 1: boom | – |" in md
    assert "TensorFlow view" in md and "| tf-mirrored | 2 | tf-single | 1.35× | 68% |" in md
    rows = list(csv.DictReader((src / "summary.csv").open()))
    assert [(r["strategy"], r["workers"]) for r in rows] == [
        ("single", "1"), ("tf-single", "1"), ("ddp", "1"), ("ddp", "2"), ("mpi", "2"),
        ("tf-mirrored", "2")]
    mpi = rows[4]
    assert mpi["status"] == "failed" and mpi["error"] == "rank 1 exited with code 1: boom"
    assert rows[3]["speedup"] == "1.83333" and rows[3]["train_s_q3"] == "6.5"
    html = (src / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "rank 1 exited with code 1: boom" in html and "<script" not in html


def test_merged_directories_and_a_rebuild_of_the_merge_agree(tmp_path, capsys):
    a = write_dir(tmp_path / "a", [rec("single", 1, 10.0), rec("ddp", 2, 4.0)])
    b = write_dir(tmp_path / "b", [rec("single", 1, 12.0), rec("ddp", 2, 6.0)])
    merged = tmp_path / "merged"
    assert main(["report", str(a), str(b), "--out", str(merged)]) == 0
    assert "ddp" in capsys.readouterr().out
    assert len(load_records(merged)) == 4
    rows = list(csv.DictReader((merged / "summary.csv").open()))
    assert [(r["strategy"], r["ok"], r["train_s_median"], r["speedup"]) for r in rows] == [
        ("single", "2", "11", "1"), ("ddp", "2", "5", "2.2")]
    again = tmp_path / "again"
    assert main(["report", str(merged), "--out", str(again)]) == 0
    assert (again / "summary.csv").read_bytes() == (merged / "summary.csv").read_bytes()
    assert (again / "summary.md").read_bytes() == (merged / "summary.md").read_bytes()


def test_merge_order_does_not_change_any_output(tmp_path):
    """`report A B` and `report B A` write the same files, the commands in report.html too."""
    a = write_dir(tmp_path / "a", [rec("single", 1, 10.0), rec("ddp", 2, 4.0)])
    b = write_dir(tmp_path / "b", [rec("single", 1, 12.0), rec("ddp", 2, 6.0)])
    for d, repeats in ((a, 1), (b, 2)):
        meta = {"sessions": [{"command": f"distbench compare --repeats {repeats}"}]}
        (d / "compare.json").write_text(json.dumps(meta))
    build_report([a, b], tmp_path / "ab")
    build_report([b, a], tmp_path / "ba")
    assert "--repeats 2" in (tmp_path / "ab" / "report.html").read_text()
    for name in ("summary.csv", "summary.md", "report.html"):
        assert (tmp_path / "ab" / name).read_bytes() == (tmp_path / "ba" / name).read_bytes(), name


def test_missing_baseline_and_setups_of_two_hosts(tmp_path):
    records = [rec("ddp", 2, 5.0, host="a"), rec("single", 1, 9.0, host="b"),
               rec("ddp", 2, 3.0, host="b")]
    report = build_report([write_dir(tmp_path / "r", records)], tmp_path / "r")
    md = (tmp_path / "r" / "summary.md").read_text()
    assert md.count("## ") == 2 and "baseline `single` ×1 was not run" in md
    assert (tmp_path / "r" / "speedup-1.png").is_file()
    assert (tmp_path / "r" / "speedup-2.png").is_file()
    assert [c.speedup for c in report.study.cells] == [None, 1.0, 3.0]


def test_report_of_a_folder_without_records_is_a_usage_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no runs.jsonl" in capsys.readouterr().err


