"""`distbench launch ...` refuses bad input in one line before writing or starting anything.

Command: python -m pytest tests/cli/test_launch_cli.py
"""

from __future__ import annotations

import pytest

from helpers import assert_one_line, run_cli


@pytest.mark.parametrize("args,message", [
    (["slurm", "--strategy", "ddp", "--nodes", "0"], "--nodes must be >= 1"),
    (["slurm", "--strategy", "nope"], "unknown strategy 'nope'"),
    (["slurm", "--strategy", "ddp", "--partition", "a b"], "--partition"),
    (["slurm", "--strategy", "ddp", "--time", "soon"], "--time"),
    (["slurm", "--strategy", "single", "--tasks-per-node", "2"], "one process"),
    (["torchrun", "--strategy", "ddp", "--nodes", "2", "--hostfile", "/no/such/file"],
     "hostfile /no/such/file not found"),
    (["compose", "--strategy", "mpi"], "not mpi"),
    (["slurm", "--strategy", "ddp", "--", "--epochs", "0"], "--epochs must be >= 1"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = run_cli("launch", *args, timeout=60)
    assert proc.returncode == 2
    assert message in assert_one_line(proc.stderr)
