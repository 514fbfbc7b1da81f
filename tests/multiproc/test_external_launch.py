"""Workers started by the launchers users already have: torchrun and mpiexec, not distbench.

Command: python -m pytest tests/multiproc/test_external_launch.py

Each case starts two real `distbench worker` processes exactly as the README shows, and checks
that they formed one world (two PIDs, the launcher named as the source of the ranks) and that
rank 0 alone wrote the record. "MPI + DDP" is `mpiexec` starting `ddp` workers: ranks from MPI,
gradients over gloo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distbench.launch.local import free_port
from distbench.results.records import load_records

from helpers import TINY

BIN = Path(sys.executable).parent


def mpiexec() -> str:
    found = BIN / "mpiexec" if (BIN / "mpiexec").exists() else shutil.which("mpiexec")
    if not found:
        pytest.skip('no mpiexec: pip install "distbench[mpi]"')
    return str(found)


def launch(cmd: list[str], out: Path) -> dict:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    proc = subprocess.run([*cmd, *TINY, "--out", str(out)], capture_output=True, text=True,
                          timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record,) = load_records(out)  # one record: rank 0 alone writes
    assert record["status"] == "ok" and record["workers"] == 2
    assert len({w["pid"] for w in record["workers_info"]}) == 2
    return record


@pytest.mark.slow
def test_torchrun_starts_ddp_workers(tmp_path: Path) -> None:
    record = launch([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                     "--master-port", str(free_port()), "--log-dir", str(tmp_path / "logs"),
                     "-m", "distbench", "worker",
                     "--strategy", "ddp"], tmp_path)
    assert record["cluster_source"] == "torchrun" and record["backend"] == "gloo"


@pytest.mark.slow
@pytest.mark.parametrize("strategy,backend", [("mpi", "mpi"), ("ddp", "gloo")])
def test_mpiexec_starts_workers(tmp_path: Path, strategy: str, backend: str) -> None:
    pytest.importorskip("mpi4py")
    record = launch([mpiexec(), "-n", "2", sys.executable, "-m", "distbench", "worker",
                     "--strategy", strategy], tmp_path)
    assert record["cluster_source"] in ("mpich", "openmpi")
    assert record["backend"] == backend
