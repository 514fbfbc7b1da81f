"""`distbench bench-comm` with real worker processes: 2 gloo ranks over 3 small sizes.

Command: python -m pytest tests/multiproc/test_bench_comm_workers.py
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from helpers import run_cli

FIELDS = ("backend", "size_bytes", "workers", "latency_median_s", "latency_q1_s", "latency_q3_s",
          "latency_mean_s", "algbw_Bps", "busbw_Bps", "times_s")


def _check(result: dict, backend: str, sizes: list[int]) -> None:
    rows = [r for r in result["results"] if r["backend"] == backend]
    assert [r["size_bytes"] for r in rows] == sizes
    for r in rows:
        assert set(FIELDS) <= set(r)
        assert r["workers"] == 2
        assert 0 < r["latency_q1_s"] <= r["latency_median_s"] <= r["latency_q3_s"]
        assert r["algbw_Bps"] > 0 and r["busbw_Bps"] == pytest.approx(r["algbw_Bps"])  # n=2
        assert len(r["times_s"]) == result["repeats"] and min(r["times_s"]) > 0



@pytest.mark.slow
def test_bench_comm_smoke(tmp_path: Path) -> None:
    """2 gloo ranks over 3 sizes (and mpi beside it where mpi4py is installed)."""
    has_mpi = importlib.util.find_spec("mpi4py") is not None
    backends = "gloo,mpi,nccl" if has_mpi else "gloo,nccl"
    proc = run_cli("bench-comm", "--backends", backends, "--workers", "2",
                   "--sizes", "1KB,4KB,16KB", "--repeats", "5", "--warmup", "2",
                   "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads((tmp_path / "bench_comm.json").read_text())
    assert result["kind"] == "bench-comm" and result["workers"] == 2
    assert "2(n-1)/n" in result["busbw_definition"]
    _check(result, "gloo", [1024, 4096, 16384])
    if has_mpi:
        _check(result, "mpi", [1024, 4096, 16384])
    assert (tmp_path / "bench_comm.png").stat().st_size > 0
    assert "gloo" in proc.stdout and "16 KB" in proc.stdout
    if not torch.cuda.is_available():  # nccl is skipped here, with its reason, not an error
        assert result["skipped"][0]["backend"] == "nccl"
        assert "CUDA" in result["skipped"][0]["reason"]


@pytest.mark.slow
def test_bench_comm_in_the_wire_type_of_fp16_compression(tmp_path: Path) -> None:
    """--dtype float16: sizes are bytes on the wire, so 4 KB is 2,048 half-precision elements;
    mpi sums float16 too, and refuses bfloat16 with the reason."""
    has_mpi = importlib.util.find_spec("mpi4py") is not None
    backends = "gloo,mpi" if has_mpi else "gloo"
    proc = run_cli("bench-comm", "--backends", backends, "--workers", "2", "--dtype", "float16",
                   "--sizes", "1KB,4KB", "--repeats", "3", "--warmup", "1",
                   "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads((tmp_path / "bench_comm.json").read_text())
    assert result["dtype"] == "float16"
    _check(result, "gloo", [1024, 4096])
    if has_mpi:
        _check(result, "mpi", [1024, 4096])
    assert "allreduce of float16" in proc.stdout
    from distbench.comm.bench_comm import unavailable

    assert "bfloat16" in (unavailable("mpi", 2, "bfloat16") or "")
