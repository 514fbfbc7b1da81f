"""Which rank caused an mpiexec run to fail, read from Hydra's log, the ranks' PID files and the
watch on which rank ended first."""

from __future__ import annotations

from pathlib import Path

import signal
import subprocess
import time

from distbench.launch.local import Worker, hydra_exit_codes
from distbench.launch.rankwatch import FirstToEnd

ABORT = ("Abort(745090447) on node 0 (rank 0 in comm 0): Fatal error in internal_Allreduce_c: "
         "Other MPI error, error stack:\ncopy_iovs(224): process_vm_readv failed (errno 3)\n")
BANNER = ("=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID 222 RUNNING AT vm\n"
          "=   EXIT CODE: 9\n")
# Rank 1 was killed; Hydra then killed rank 0 with the same signal and names the lowest rank.
BOTH_KILLED = BANNER.replace("PID 222", "PID 111") + "[mpiexec@vm] Exit codes: [vm] 9,9\n"


class Saw:
    """A watch that saw `rank` end first."""

    def __init__(self, rank: str | None) -> None:
        self.rank = rank

    def stop(self) -> str | None:
        return self.rank


def mpiexec_worker(tmp_path: Path, log: str, first: str | None = None) -> Worker:
    (tmp_path / "rank0.pid").write_text("111")
    (tmp_path / "rank1.pid").write_text("222")
    (tmp_path / "mpiexec.log").write_text(log)
    return Worker(None, None, tmp_path / "mpiexec.log", Saw(first))  # type: ignore[arg-type]


def test_exit_codes_are_read_host_by_host() -> None:
    assert hydra_exit_codes("[mpiexec@vm] Exit codes: [a] 0,9 [b] 1\n") == [0, 9, 1]
    assert hydra_exit_codes("no codes here") == []


def test_the_rank_that_ended_first_is_the_cause_when_both_were_killed(tmp_path: Path) -> None:
    worker = mpiexec_worker(tmp_path, BOTH_KILLED, first="1")
    assert worker.rank_killed_under_mpiexec() == "rank 1 was killed by SIGKILL"


def test_unseen_order_names_every_killed_rank_and_blames_none(tmp_path: Path) -> None:
    found = mpiexec_worker(tmp_path, BOTH_KILLED).rank_killed_under_mpiexec()
    assert found is not None and found.startswith("ranks 0, 1 were killed by SIGKILL")


def test_one_signalled_rank_among_exits_is_the_cause(tmp_path: Path) -> None:
    log = BANNER.replace("PID 222", "PID 111") + "Exit codes: [vm] 0,9\n"
    assert mpiexec_worker(tmp_path, log).rank_killed_under_mpiexec() == (
        "rank 1 was killed by SIGKILL")


def test_a_first_rank_that_raised_leaves_the_reason_to_its_error(tmp_path: Path) -> None:
    log = "RuntimeError: boom\nExit codes: [vm] 9,1\n"
    assert mpiexec_worker(tmp_path, log, first="1").rank_killed_under_mpiexec() is None


def test_a_rank_that_finished_first_is_not_the_cause(tmp_path: Path) -> None:
    log = "Exit codes: [vm] 9,0\n"
    assert mpiexec_worker(tmp_path, log, first="1").rank_killed_under_mpiexec() == (
        "rank 0 was killed by SIGKILL")


def test_the_watch_sees_which_process_ended_first(tmp_path: Path) -> None:
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    try:
        watch = FirstToEnd(tmp_path)
        for rank, proc in enumerate(procs):
            (tmp_path / f"rank{rank}.pid").write_text(str(proc.pid))
        time.sleep(0.3)  # both watched
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        time.sleep(0.3)
        procs[0].kill()
        procs[0].wait()
        assert watch.stop() == "1"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_the_watch_counts_a_process_gone_before_it_looked(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "rank0.pid").write_text(str(alive.pid))
        (tmp_path / "rank1.pid").write_text(str(gone.pid))
        watch = FirstToEnd(tmp_path)
        time.sleep(0.3)
        assert watch.stop() == "1"
    finally:
        alive.kill()
        alive.wait()


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
