"""`distbench project` refuses, in one line, a bench-comm file it cannot fit and a network whose
numbers are not finite (projection.json would hold Infinity, which is not JSON).

Command: python -m pytest tests/unit/comm/test_project_inputs.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distbench.cli.main import main
from distbench.results.records import append_record

from helpers import projection_record

ROW = {"backend": "gloo", "size_bytes": 1024, "workers": 2, "latency_median_s": 1e-4}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    append_record(tmp_path / "runs",
                  projection_record("ddp", 2, 2.0, 0.5, steps=100, grad_bytes=4 * 10**6))
    return tmp_path / "runs"


@pytest.mark.parametrize(("content", "says"), [
    (b"root:x:0:0:root:/root:/bin/bash\n", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (b"[]", "no \"kind\""),
    (json.dumps({"kind": "bench-comm", "results": "x"}).encode(), "not a list of objects"),
    (json.dumps({"kind": "bench-comm", "results": [{**ROW, "size_bytes": "1KB"}]}).encode(),
     "results[0]: size_bytes"),
    (json.dumps({"kind": "bench-comm", "results": [{**ROW, "latency_median_s": 10**400}]})
     .encode(), "results[0]: latency_median_s"),
    (json.dumps({"kind": "bench-comm", "results": [{**ROW, "times_s": [None]}]}).encode(),
     "results[0]: times_s"),
    (json.dumps({"kind": "bench-comm", "results": [{**ROW, "workers": None}]}).encode(),
     "results[0]: workers"),
])
def test_a_bench_comm_file_that_cannot_be_fitted_is_one_line(
        content: bytes, says: str, runs: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bench = tmp_path / "bench_comm.json"
    bench.write_bytes(content)
    assert main(["project", str(runs), "--workers", "8", "--from-bench-comm", str(bench)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distbench: error: ") and says in err and err.count("\n") == 1
    assert not (runs / "projection.json").exists()


@pytest.mark.parametrize(("bandwidth", "latency"), [("1e400Gbit/s", "5us"),
                                                    ("25Gbit/s", "1e400s")])
def test_a_network_that_is_not_finite_is_one_line(bandwidth: str, latency: str, runs: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["project", str(runs), "--workers", "8", "--bandwidth", bandwidth,
                 "--latency", latency]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distbench: error: --bandwidth/--latency") and err.count("\n") == 1
    assert not (runs / "projection.json").exists()
