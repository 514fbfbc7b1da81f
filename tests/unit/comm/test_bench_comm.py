"""`distbench bench-comm` without workers: the per-size summary and input refused before any
worker starts. (With real workers: tests/multiproc/test_bench_comm_workers.py.)

Command: python -m pytest tests/unit/comm/test_bench_comm.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distbench.cli.main import main
from distbench.comm.bench_comm import summarize, unavailable


def test_summary_uses_the_mean_over_ranks_per_iteration() -> None:
    row = summarize("gloo", 4000, 2, [[1e-3, 2e-3, 3e-3], [3e-3, 2e-3, 1e-3]])
    assert row["times_s"] == pytest.approx([2e-3, 2e-3, 2e-3])
    assert row["algbw_Bps"] == pytest.approx(2e6) and row["busbw_Bps"] == pytest.approx(2e6)


@pytest.mark.parametrize("args", [["--backends", "carrier-pigeon"], ["--workers", "1"],
                                  ["--sizes", "2B"], ["--sizes", "1MB:1KB"],
                                  ["--dtype", "int8"]])
def test_bad_input_is_a_usage_error(args: list[str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-comm", *args, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("distbench: error: ")
    assert not (tmp_path / "bench_comm.json").exists()  # refused before any worker started


def test_nccl_without_gpus_says_why() -> None:
    reason = unavailable("nccl", 2)
    if torch.cuda.device_count() >= 2:
        assert reason is None
    else:
        assert reason and ("CUDA" in reason or "GPU" in reason)
