"""The launcher's report of a failed run names every rank that failed on its own: ranks that fail
together are seen by one poll, and the lowest rank, reported first, may only have lost its
connection to the rank whose error is the cause.

Command: python -m pytest tests/unit/launch/test_supervise.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from distbench.launch.local import Worker, WorkerFailure, start_process, supervise


def worker(tmp_path: Path, rank: int, code: str) -> Worker:
    log = tmp_path / f"rank{rank}.log"
    return Worker(rank, start_process([sys.executable, "-c", code], {}, log, False), log)


def fails(after_s: float, message: str) -> str:
    return (f"import sys, time; time.sleep({after_s}); "
            f"print('distbench: error: {message}', file=sys.stderr); sys.exit(1)")


def test_every_rank_that_failed_is_reported(tmp_path: Path) -> None:
    workers = [worker(tmp_path, 0, fails(0.5, "rank 0: Socket closed by task 1")),
               worker(tmp_path, 1, fails(0.5, "rank 1: the cause"))]
    with pytest.raises(WorkerFailure) as failure:
        supervise(workers, timeout=60)
    lines = str(failure.value).splitlines()
    assert lines[0] == "rank 0: Socket closed by task 1"
    assert lines[-1] == "also: rank 1: the cause"


def test_a_peer_that_fails_a_moment_later_is_reported(tmp_path: Path) -> None:
    workers = [worker(tmp_path, 0, fails(0, "rank 0: the cause")),
               worker(tmp_path, 1, fails(0.4, "rank 1: lost rank 0"))]
    with pytest.raises(WorkerFailure) as failure:
        supervise(workers, timeout=60)
    assert str(failure.value).splitlines()[-1] == "also: rank 1: lost rank 0"


def test_a_peer_that_hangs_is_stopped_not_waited_for(tmp_path: Path) -> None:
    workers = [worker(tmp_path, 0, fails(0, "rank 0: the cause")),
               worker(tmp_path, 1, "import time; time.sleep(600)")]
    start = time.monotonic()
    with pytest.raises(WorkerFailure) as failure:
        supervise(workers, timeout=60)
    assert time.monotonic() - start < 10
    assert str(failure.value) == "rank 0: the cause"
    assert workers[1].process.returncode is not None
