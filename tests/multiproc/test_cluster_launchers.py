"""The real engines run what the launch writers produce: multi-node torchrun and mpiexec rehearsed
on 127.0.0.1, and a job on a one-node Slurm cluster where one answers.

Command: python -m pytest tests/multiproc/test_cluster_launchers.py
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from distbench.results.records import load_records

from helpers import run_cli

RUN = ["--dataset", "mnist-5k", "--epochs", "1", "--no-progress"]


@pytest.mark.parametrize("launcher,strategy,host", [
    ("torchrun", "ddp", "127.0.0.1"), ("mpiexec", "mpi", "localhost"),
])
def test_multinode_rehearsal(tmp_path, tmp_path_factory, launcher, strategy, host):
    """Two "nodes" that are both this machine: the multi-node code path, end to end, leaving
    nothing of its own in the temp folder (torchrun's log folders go into the run's)."""
    hostfile = tmp_path / "hosts"
    hostfile.write_text(f"{host}\n{host}\n")
    out = tmp_path / "out"
    temp = tmp_path_factory.mktemp("temp")
    proc = run_cli("launch", launcher, "--nodes", "2", "--hostfile", str(hostfile),
                   "--strategy", strategy, "--timeout", "150", "--", *RUN, "--out", str(out),
                   timeout=200, env={"TMPDIR": str(temp)})
    assert proc.returncode == 0, proc.stderr
    assert "--nnodes=2" in proc.stdout or " -f " in proc.stdout
    (record,) = load_records(out)
    assert record["status"] == "ok" and record["workers"] == 2
    assert len({w["pid"] for w in record["workers_info"]}) == 2
    # Inductor's compile cache is meant to stay, as it does for every PyTorch program.
    left = [p.name for p in temp.iterdir() if not p.name.startswith("torchinductor_")]
    assert not left, f"left in the temp folder: {left}"



def slurm_up() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False



# CI, as root, starts the cluster and sets this: there a Slurm that does not answer is a failure.
REQUIRE_SLURM = os.environ.get("DISTBENCH_REQUIRE_SLURM") == "1"



@pytest.mark.skipif(not REQUIRE_SLURM and not slurm_up(), reason="no Slurm cluster answers here "
                    "(scripts/slurm-local.sh starts a one-node one as root; .ci/run does)")
def test_real_slurm_job(tmp_path):
    assert slurm_up(), "DISTBENCH_REQUIRE_SLURM=1 but sinfo gets no answer from slurmctld"
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "distbench", "launch", "slurm", "--nodes", "1",
         "--tasks-per-node", "2", "--strategy", "ddp", "--time", "00:10:00", "--wait",
         "--script", str(tmp_path / "job.sbatch"), "--", *RUN, "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record,) = load_records(out)
    assert record["status"] == "ok" and record["workers"] == 2
    assert record["cluster_source"] == "torchrun"
    assert "SLURM_JOB_ID" in record["env"]["scheduler"]  # the fingerprint names the job
    assert len({w["pid"] for w in record["workers_info"]}) == 2
