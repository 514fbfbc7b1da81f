"""A worker that dies takes the whole run down quickly and cleanly: non-zero exit, a `failed`
record, the failing rank named, and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from distbench.results.records import load_records

from helpers import forked_workers, marked_processes, run_cli

LONG = [
    "--dataset",
    "synthetic",
    "--synthetic-samples",
    "20000",
    "--model",
    "mlp-25",
    "--batch-size",
    "8",
    "--epochs",
    "50",
    "--no-progress",
]


def rank_pid(marker: str, rank: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        for pid, env in marked_processes(marker).items():
            # Workers carry RANK (distbench's launcher) or PMI_RANK (mpiexec); mpiexec and its
            # proxies carry neither.
            if env.get("RANK", env.get("PMI_RANK")) == str(rank):
                return pid
        time.sleep(0.2)
    raise AssertionError(f"rank {rank} never started")


def forked(marker: str, count: int, deadline: float) -> list[int]:
    while time.monotonic() < deadline:
        pids = forked_workers(marker)
        if len(pids) >= count:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"{count} forked workers never started")


@pytest.mark.parametrize("strategy", ["ddp", "mpi"])
def test_sigkill_one_worker(tmp_path, strategy):
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distbench",
            "run",
            "--strategy",
            strategy,
            "--workers",
            "2",
            *LONG,
            "--out",
            str(tmp_path),
        ],
        env={**os.environ, "DISTBENCH_TEST_MARKER": marker},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        victim = rank_pid(marker, 1, time.monotonic() + 60)
        time.sleep(4)  # let training begin
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        elapsed = time.monotonic() - killed_at
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert elapsed < 30
    # The cause, not its echoes. Under mpiexec, Hydra may report rank 0's abort (its collective
    # read the dead rank's memory) instead of the death: rank 1 is then named as the silent one.
    cause = next((c for c in ("rank 1 was killed by SIGKILL", "rank 1 ended without a message")
                  if c in stderr), None)
    assert cause is not None and (strategy == "mpi" or "SIGKILL" in cause), stderr
    (record,) = load_records(tmp_path)
    assert record["status"] == "failed" and cause in record["error"]
    time.sleep(0.5)
    assert marked_processes(marker) == {}, "processes left behind"


def test_timeout_stops_the_run(tmp_path):
    proc = run_cli("run", "--strategy", "ddp", "--workers", "2", *LONG, "--out", str(tmp_path),
                   "--timeout", "8", timeout=60)
    assert proc.returncode != 0
    assert "timed out" in proc.stderr
    (record,) = load_records(tmp_path)
    assert record["status"] == "failed" and "timed out" in record["error"]


def test_worker_error_is_reported_with_its_rank(tmp_path):
    """A worker that raises (here: data it cannot find) fails the run with its message."""
    proc = run_cli("run", "--strategy", "ddp", "--workers", "2", "--dataset", "mnist",
                   "--data-dir", str(tmp_path / "nowhere"), "--no-progress", "--out",
                   str(tmp_path), timeout=60, env={"DISTBENCH_DATA": ""})
    assert proc.returncode != 0
    assert "rank" in proc.stderr and "not found" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    (record,) = load_records(tmp_path)
    assert record["status"] == "failed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_run_stops_its_workers(tmp_path, sig):
    """`kill`, `timeout` or a closed terminal stop the workers too (they run in sessions of their
    own); SIGTERM also records the run as interrupted. Even SIGKILL, which the parent cannot
    handle, leaves no worker training on with nobody watching it."""
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "distbench", "run", "--strategy", "single", *LONG,
         "--out", str(tmp_path)],
        env={**os.environ, "DISTBENCH_TEST_MARKER": marker},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        rank_pid(marker, 0, time.monotonic() + 60)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0
    deadline = time.monotonic() + 10
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(marker) == {}, "a worker outlived its run"
    if sig == signal.SIGTERM:
        (record,) = load_records(tmp_path)
        assert record["status"] == "failed" and "interrupted" in record["error"]


def test_sigkill_of_compare_leaves_no_process(tmp_path):
    """compare's runs die with it, even by SIGKILL (which it cannot handle), and their workers
    with them: nothing trains on for a study nobody watches."""
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "distbench", "compare", "--strategies", "ddp", "--workers", "2",
         "--no-baseline", "--repeats", "1", *LONG, "--out", str(tmp_path / "study")],
        env={**os.environ, "DISTBENCH_TEST_MARKER": marker},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        forked(marker, 2, time.monotonic() + 90)  # compare -> run -> the forked workers
        proc.kill()
        proc.wait(timeout=10)
    finally:
        proc.kill()
    deadline = time.monotonic() + 20
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(marker) == {}, "a run or worker outlived compare"


@pytest.mark.parametrize("strategy", ["ddp", "mpi"])
def test_sigkill_of_a_forked_worker_fails_its_run_only(tmp_path, strategy):
    """A worker forked by compare's fork server (under mpiexec: through its stand-in) that is
    killed is named like an exec'd one, its run is recorded failed, and nothing is left."""
    marker = uuid.uuid4().hex
    out = tmp_path / "study"
    proc = subprocess.Popen(
        [sys.executable, "-m", "distbench", "compare", "--strategies", strategy, "--workers",
         "2", "--no-baseline", "--repeats", "1", *LONG, "--out", str(out)],
        env={**os.environ, "DISTBENCH_TEST_MARKER": marker},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        victim = forked(marker, 2, time.monotonic() + 90)[-1]
        time.sleep(4)  # let training begin
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, output  # a failed run is an answer: the study goes on
    (record,) = load_records(out)
    assert record["status"] == "failed", record
    assert "killed by SIGKILL" in record["error"] or "ended without a message" in record["error"]
    time.sleep(0.5)
    assert marked_processes(marker) == {}, "processes left behind"
