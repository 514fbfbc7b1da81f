"""runs.jsonl under stress: concurrent writers, damaged lines, a full disk.

Command: python -m pytest tests/unit/results/test_records_safety.py
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import warnings
from pathlib import Path

import pytest

from distbench.core.errors import DistbenchError
from distbench.results.records import (
    RUNS_FILE,
    CorruptRecordsWarning,
    append_record,
    load_records,
)

WRITERS, APPENDS = 4, 200


def run(run_id: str) -> bytes:
    """The smallest line a reader takes for a run record."""
    return json.dumps({"run_id": run_id, "status": "ok", "strategy": "single",
                       "workers": 1}).encode()


def _append_many(out: str, writer: int) -> None:
    for i in range(APPENDS):
        # Records of realistic size (a few KB), so a lost update would show.
        append_record(out, {"writer": writer, "i": i, "padding": "x" * 3000})


def test_concurrent_appends_keep_every_record(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    lines = (tmp_path / RUNS_FILE).read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline
    records = [json.loads(line) for line in lines[:-1]]
    assert len(records) == WRITERS * APPENDS
    assert sorted((r["writer"], r["i"]) for r in records) == [
        (w, i) for w in range(WRITERS) for i in range(APPENDS)]


def test_corrupt_lines_are_skipped_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / RUNS_FILE
    path.write_bytes(run("a") + b'\n{"run_id": "b", "tru\n\n[1, 2]\n"text"\n\xff\xfe\n'
                     + run("c") + b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_records(tmp_path)
    assert [r["run_id"] for r in records] == ["a", "c"]
    assert len(caught) == 1 and caught[0].category is CorruptRecordsWarning
    message = str(caught[0].message)
    assert "\n" not in message and str(path) in message
    assert "4 line(s)" in message and "line 2, 4, 5, 6" in message


def test_clean_file_gives_no_warning(tmp_path: Path) -> None:
    append_record(tmp_path, json.loads(run("a")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_records(tmp_path) == [json.loads(run("a"))]


def test_the_cli_prints_the_warning_as_one_line(tmp_path: Path) -> None:
    from helpers import run_cli

    runs = tmp_path / "runs"
    append_record(runs, {"run_id": "good", "status": "ok", "strategy": "single", "workers": 1,
                         "train_s": 1.0, "started_at": "2026-01-01T00:00:00+00:00"})
    with (runs / RUNS_FILE).open("ab") as fh:
        fh.write(b"garbage\n")
    proc = run_cli("report", str(runs), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    warning_lines = [ln for ln in proc.stderr.splitlines() if "line(s)" in ln]
    assert warning_lines == [f"distbench: warning: {runs / RUNS_FILE}: skipped 1 line(s) that "
                             "are not run records (line 2)"], proc.stderr


def test_an_unfinished_last_line_is_closed_before_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / RUNS_FILE
    path.write_bytes(run("a") + b'\n{"run_id": "cut sh')  # a crash mid-line
    append_record(tmp_path, json.loads(run("b")))
    assert path.read_bytes().endswith(b'{"run_id": "cut sh\n' + run("b") + b"\n")
    with pytest.warns(CorruptRecordsWarning, match="line 2"):
        assert [r["run_id"] for r in load_records(tmp_path)] == ["a", "b"]


def _full_disk(written: int):
    """An `os.write` that stores `written` bytes and then finds the disk full."""
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if written:
            real_write(fd, data[:written])
            return written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write


@pytest.mark.parametrize("written", [0, 10])
def test_disk_full_is_one_line_and_leaves_the_file_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: int) -> None:
    append_record(tmp_path, {"run_id": "a"})
    before = (tmp_path / RUNS_FILE).read_bytes()
    monkeypatch.setattr(os, "write", _full_disk(written))
    with pytest.raises(DistbenchError) as exc:
        append_record(tmp_path, {"run_id": "b", "padding": "y" * 100})
    monkeypatch.undo()
    message = str(exc.value)
    assert "\n" not in message and RUNS_FILE in message
    reason = f"only {written} of" if written else "No space left on device"
    assert reason in message and "the file is unchanged" in message
    assert (tmp_path / RUNS_FILE).read_bytes() == before
