"""Which rank caused an mpiexec run to fail, read from Hydra's log and the ranks' PID files."""

from __future__ import annotations

from pathlib import Path

from distbench.launch.local import Worker

ABORT = ("Abort(745090447) on node 0 (rank 0 in comm 0): Fatal error in internal_Allreduce_c: "
         "Other MPI error, error stack:\ncopy_iovs(224): process_vm_readv failed (errno 3)\n")
BANNER = ("=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID 222 RUNNING AT vm\n"
          "=   EXIT CODE: 9\n")


def mpiexec_worker(tmp_path: Path, log: str) -> Worker:
    (tmp_path / "rank0.pid").write_text("111")
    (tmp_path / "rank1.pid").write_text("222")
    (tmp_path / "mpiexec.log").write_text(log)
    return Worker(None, None, tmp_path / "mpiexec.log")  # type: ignore[arg-type]


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
