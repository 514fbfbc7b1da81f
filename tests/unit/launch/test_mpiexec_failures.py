"""Which rank caused an mpiexec run to fail, read from Hydra's log, the ranks' PID files and the
watch on which rank ended first."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from distbench.launch import local
from distbench.launch.local import Worker, hydra_statuses, killed_by
from distbench.launch.rankwatch import FirstToEnd

ABORT = ("Abort(745090447) on node 0 (rank 0 in comm 0): Fatal error in internal_Allreduce_c: "
         "Other MPI error, error stack:\ncopy_iovs(224): process_vm_readv failed (errno 3)\n")
BANNER = ("=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID 222 RUNNING AT vm\n"
          "=   EXIT CODE: 9\n")
# Rank 1 was killed; Hydra then killed rank 0 with the same signal and names the lowest rank.
BOTH_KILLED = BANNER.replace("PID 222", "PID 111") + "[mpiexec@vm] Exit codes: [vm] 9,9\n"


class Saw:
    """A watch that saw `first` end first."""

    def __init__(self, first: str | None) -> None:
        self.first = first


def mpiexec_worker(tmp_path: Path, log: str, first: str | None = None) -> Worker:
    (tmp_path / "rank0.pid").write_text("111")
    (tmp_path / "rank1.pid").write_text("222")
    (tmp_path / "mpiexec.log").write_text(log)
    return Worker(None, None, tmp_path / "mpiexec.log", Saw(first))  # type: ignore[arg-type]


def test_wait_statuses_are_read_from_mpiexecs_last_report() -> None:
    log = ("[rank 0] Exit codes: [vm] 9,9\n"  # a rank's own output is not mpiexec's
           "[mpiexec@vm] Exit codes: [vm] 0,768\n")
    assert hydra_statuses(log) == [0, 768]
    assert hydra_statuses("no statuses here") == []


def test_a_wait_status_is_decoded() -> None:
    assert killed_by(9) is signal.SIGKILL
    assert killed_by(134) is signal.SIGABRT  # with a core
    assert killed_by(768) is None  # exit code 3
    assert killed_by(0) is None


def test_the_rank_that_ended_first_is_the_cause_when_both_were_killed(tmp_path: Path) -> None:
    worker = mpiexec_worker(tmp_path, BOTH_KILLED, first="1")
    assert worker.rank_killed_under_mpiexec() == "rank 1 was killed by SIGKILL"


def test_unseen_order_names_every_killed_rank_and_blames_none(tmp_path: Path) -> None:
    found = mpiexec_worker(tmp_path, BOTH_KILLED).rank_killed_under_mpiexec()
    assert found is not None and found.startswith("ranks 0, 1 were killed by SIGKILL")


def test_one_signalled_rank_among_exits_is_the_cause(tmp_path: Path) -> None:
    log = BANNER.replace("PID 222", "PID 111") + "[mpiexec@vm] Exit codes: [vm] 0,134\n"
    assert mpiexec_worker(tmp_path, log).rank_killed_under_mpiexec() == (
        "rank 1 was killed by SIGABRT")


def test_a_first_rank_that_raised_leaves_the_reason_to_its_error(tmp_path: Path) -> None:
    log = "RuntimeError: boom\n[mpiexec@vm] Exit codes: [vm] 9,256\n"
    assert mpiexec_worker(tmp_path, log, first="1").rank_killed_under_mpiexec() is None


def test_a_rank_that_finished_first_is_not_the_cause(tmp_path: Path) -> None:
    log = "[mpiexec@vm] Exit codes: [vm] 9,0\n"
    assert mpiexec_worker(tmp_path, log, first="1").rank_killed_under_mpiexec() == (
        "rank 0 was killed by SIGKILL")


needs_pidfd = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd on this OS")


def seen(watch: FirstToEnd) -> str | None:
    """Waits (10 s at most) for the watch to see a rank end, and returns it."""
    deadline = time.monotonic() + 10
    while watch.first is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return watch.first


@needs_pidfd
def test_the_watch_sees_which_process_ended_first(tmp_path: Path) -> None:
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    watch = FirstToEnd(tmp_path, 2)
    try:
        for rank, proc in enumerate(procs):
            (tmp_path / f"rank{rank}.pid").write_text(str(proc.pid))
        (tmp_path / "rankx.pid").write_text("not a rank")
        procs[1].send_signal(signal.SIGKILL)
        assert seen(watch) == "1"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        watch.stop()
    assert watch.first == "1"


@needs_pidfd
def test_the_watch_knows_no_order_while_a_rank_is_unwatched(tmp_path: Path) -> None:
    """Rank 1 never wrote its PID: rank 0 ending first may be Hydra's echo of rank 1's death."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    (tmp_path / "rank0.pid").write_text(str(proc.pid))
    watch = FirstToEnd(tmp_path, 2)
    assert watch._thread is not None
    watch._thread.join(10)  # the watch ends by itself once it has seen a rank end
    assert not watch._thread.is_alive() and watch.first is None


def test_hydra_notice_names_the_killed_rank(tmp_path: Path) -> None:
    worker = mpiexec_worker(tmp_path, ABORT + BANNER)
    assert worker.rank_killed_under_mpiexec() == "rank 1 was killed by SIGKILL"


def test_without_a_notice_the_silent_rank_is_the_cause(tmp_path: Path) -> None:
    """Rank 0 aborted reading rank 1's memory and Hydra said nothing of rank 1."""
    found = mpiexec_worker(tmp_path, ABORT).rank_killed_under_mpiexec()
    assert found is not None and found.startswith("rank 1 ended without a message")


def test_no_rank_is_blamed_when_every_rank_spoke_or_none_did(tmp_path: Path) -> None:
    both = ABORT + ABORT.replace("(rank 0 in comm 0)", "(rank 1 in comm 0)")
    assert mpiexec_worker(tmp_path, both).rank_killed_under_mpiexec() is None
    assert mpiexec_worker(tmp_path, "some other failure\n").rank_killed_under_mpiexec() is None


@pytest.mark.parametrize(("prints", "flagged"), [("HYDRA build details:", True),
                                                ("mpirun (Open MPI) 5.0", False)])
def test_only_hydra_is_asked_for_every_status(tmp_path: Path, monkeypatch, prints: str,
                                              flagged: bool) -> None:
    fake = tmp_path / "mpiexec"
    fake.write_text(f"#!/bin/sh\necho '{prints}'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(local, "mpiexec_path", lambda: str(fake))
    assert local.mpiexec_command(2) == [
        str(fake), *(["-print-all-exitcodes"] if flagged else []), "-n", "2"]


def test_an_mpiexec_that_cannot_run_is_not_taken_for_hydra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local, "mpiexec_path", lambda: str(tmp_path / "missing"))
    assert local.mpiexec_command(3) == [str(tmp_path / "missing"), "-n", "3"]
