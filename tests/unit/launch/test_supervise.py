"""The launcher's report of a failed run names every rank that failed on its own: ranks that fail
together are seen by one poll, and the lowest rank, reported first, may only have lost its
connection to the rank whose error is the cause. A refusal of bad input stays one line.

Command: python -m pytest tests/unit/launch/test_supervise.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from distbench.core.config import RunConfig
from distbench.launch import local
from distbench.launch.local import Worker, WorkerFailure, start_process, supervise
from distbench.results.records import append_record, load_records, make_record, utc_now


def worker(tmp_path: Path, rank: int, code: str) -> Worker:
    log = tmp_path / f"rank{rank}.log"
    return Worker(rank, start_process([sys.executable, "-c", code], {}, log, False), log)


def fails(message: str, after_s: float = 0, code: int = 1) -> str:
    return (f"import sys, time; time.sleep({after_s}); "
            f"print('distbench: error: {message}', file=sys.stderr); sys.exit({code})")


def ended(*workers: Worker) -> list[Worker]:
    """Workers that have all ended before the launcher looks: its first poll sees them all."""
    for w in workers:
        w.process.wait()
    return list(workers)


def failure(workers: list[Worker]) -> WorkerFailure:
    with pytest.raises(WorkerFailure) as info:
        supervise(workers, timeout=60)
    return info.value


def test_every_rank_that_failed_is_reported(tmp_path: Path) -> None:
    workers = ended(worker(tmp_path, 0, fails("rank 0: Socket closed by task 1")),
                    worker(tmp_path, 1, fails("rank 1: the cause")))
    assert str(failure(workers)).splitlines() == ["rank 0: Socket closed by task 1",
                                                  "also: rank 1: the cause"]


def test_a_peer_that_fails_a_moment_later_is_reported(tmp_path: Path) -> None:
    workers = [worker(tmp_path, 0, fails("rank 0: the cause")),
               worker(tmp_path, 1, fails("rank 1: lost rank 0", after_s=0.4))]
    assert str(failure(workers)).splitlines()[-1] == "also: rank 1: lost rank 0"


def test_a_signal_death_seen_later_is_still_the_cause(tmp_path: Path) -> None:
    workers = [worker(tmp_path, 0, fails("rank 0: Socket closed")),
               worker(tmp_path, 1, "import os, time; time.sleep(0.4); os.abort()")]
    assert str(failure(workers)).splitlines() == ["rank 1 was killed by SIGABRT",
                                                  "also: rank 0: Socket closed"]


def test_ranks_failing_alike_are_reported_once(tmp_path: Path) -> None:
    workers = ended(*(worker(tmp_path, r, fails(f"rank {r}: out of memory")) for r in range(3)))
    assert str(failure(workers)) == "rank 0: out of memory"


def test_a_refusal_of_bad_input_stays_one_line(tmp_path: Path) -> None:
    workers = ended(*(worker(tmp_path, r, fails(f"--model: rank {r} got 3 logits", code=2))
                      for r in range(2)))
    error = failure(workers)
    assert str(error) == "--model: rank 0 got 3 logits" and error.exit_code == 2


def test_a_peer_that_hangs_is_stopped_not_waited_for(tmp_path: Path) -> None:
    workers = [worker(tmp_path, 0, fails("rank 0: the cause")),
               worker(tmp_path, 1, "import time; time.sleep(600)")]
    start = time.monotonic()
    assert str(failure(workers)) == "rank 0: the cause"
    assert time.monotonic() - start < 10
    assert workers[1].process.returncode is not None


def test_a_failed_run_is_recorded_once_under_its_own_id(tmp_path: Path) -> None:
    cfg = RunConfig(strategy="ddp", workers=2, out=str(tmp_path))
    local._record_failure(cfg, "rank 1: the cause", utc_now(), "run-a")
    (record,) = load_records(tmp_path)
    assert (record["run_id"], record["status"], record["error"]) == \
        ("run-a", "failed", "rank 1: the cause")
    # Rank 0 recorded run-b before a peer failed on its way out: no second record for it.
    append_record(tmp_path, make_record(cfg, "ok", run_id="run-b"))
    local._record_failure(cfg, "rank 1 was killed by SIGSEGV", utc_now(), "run-b")
    assert [(r["run_id"], r["status"]) for r in load_records(tmp_path)] == \
        [("run-a", "failed"), ("run-b", "ok")]
