"""The α-β cost model, its fit, and `distbench project`, against numbers worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distbench.cli.main import main
from distbench.comm.cost_model import (
    Link,
    bus_bandwidth,
    fit_link,
    parse_bandwidth,
    parse_latency,
    parse_size,
    parse_sizes,
    ring_allreduce_s,
    step_times,
)
from distbench.comm.project import (
    Workload,
    grad_bytes_of,
    links_from_bench_comm,
    overlaps,
    project,
    workloads_from_records,
)
from distbench.core.errors import UsageError
from distbench.results.records import append_record

from helpers import projection_record

# --------------------------------------------------------------------------- units


def test_sizes_and_units() -> None:
    assert parse_size("1KB") == 1024
    assert parse_size("64MB") == 64 * 2**20
    assert parse_size("4096") == 4096
    assert parse_size("1.5KiB") == 1536
    assert parse_sizes("1KB:8KB") == [1024, 2048, 4096, 8192]
    assert parse_sizes("1KB:64MB")[-1] == 64 * 2**20 and len(parse_sizes("1KB:64MB")) == 17
    assert parse_sizes("4KB,1KB,4KB") == [1024, 4096]
    assert parse_bandwidth("25Gbit/s") == pytest.approx(3.125e9)
    assert parse_bandwidth("10Gbps") == pytest.approx(1.25e9)
    assert parse_bandwidth("3GB/s") == pytest.approx(3e9)
    assert parse_latency("5us") == pytest.approx(5e-6)
    assert parse_latency("0.2ms") == pytest.approx(2e-4)
    for bad in (lambda: parse_size("5 parsecs"), lambda: parse_sizes("8KB:1KB"),
                lambda: parse_bandwidth("fast"), lambda: parse_latency("5 fortnights")):
        with pytest.raises(UsageError):
            bad()


# --------------------------------------------------------------------------- the model


def test_ring_allreduce_by_hand() -> None:
    # n=4, α=5 us, β=25 Gbit/s=3.125e9 B/s, 100 MB: 2·3·5e-6 + 2·3/4 · 1e8/3.125e9
    link = Link(5e-6, 3.125e9)
    assert ring_allreduce_s(1e8, 4, link) == pytest.approx(3e-5 + 0.048)
    assert ring_allreduce_s(1e8, 1, link) == 0.0
    # n=2: 2α + bytes/β
    assert ring_allreduce_s(1e6, 2, Link(1e-5, 1e9)) == pytest.approx(2e-5 + 1e-3)


def test_busbw_example() -> None:
    # 64 MiB in 10 ms over 8 ranks: algbw 6.7108864 GB/s, busbw = algbw · 2·7/8 = 11.744 GB/s
    assert bus_bandwidth(64 * 2**20, 0.010, 8) == pytest.approx(6.7108864e9 * 1.75)
    assert bus_bandwidth(1e6, 1e-3, 2) == pytest.approx(1e9)  # n=2: busbw = algbw


@pytest.mark.parametrize("workers", [[2], [2, 4, 8]])
def test_fit_recovers_known_alpha_beta(workers: list[int]) -> None:
    alpha, beta = 20e-6, 2e9
    sizes = parse_sizes("1KB:64MB")
    exact = [(n, m, ring_allreduce_s(m, n, Link(alpha, beta))) for n in workers for m in sizes]
    fit = fit_link(exact)
    assert fit.alpha_s == pytest.approx(alpha, rel=1e-9)
    assert fit.beta_Bps == pytest.approx(beta, rel=1e-9)
    rng = np.random.default_rng(0)
    noisy = [(n, m, t * (1 + 0.03 * rng.standard_normal())) for n, m, t in exact]
    fit = fit_link(noisy)
    assert fit.alpha_s == pytest.approx(alpha, rel=0.05)
    assert fit.beta_Bps == pytest.approx(beta, rel=0.05)


def test_fit_clamps_negative_latency() -> None:
    # Pure bandwidth data with a dip at small sizes would give α < 0: α is clamped, β kept.
    points = [(2, m, m / 1e9) for m in (1e6, 1e7, 1e8)] + [(2, 1e3, 0.5e-6)]
    fit = fit_link(points)
    assert fit.alpha_s == 0.0
    assert fit.beta_Bps == pytest.approx(1e9, rel=0.5)


def test_step_times_both_schedules() -> None:
    m = step_times(compute_s=0.6, comm_s=0.102, workers=2, backward_fraction=2 / 3)
    assert m.serial_s == pytest.approx(0.702)
    assert m.overlap_s == pytest.approx(0.6)  # 0.2 forward + max(0.4 backward, 0.102)
    m = step_times(compute_s=0.15, comm_s=0.189, workers=8, backward_fraction=2 / 3)
    assert m.overlap_s == pytest.approx(0.05 + 0.189)


def test_speedup_and_efficiency_by_hand() -> None:
    # 1.2 s of compute per step on one worker, 100 MB of gradients, α = 1 ms, β = 1 GB/s.
    w = Workload("hand", workers=1, compute_s=1.2, grad_bytes=10**8)
    rows = {r.workers: r for r in project(w, Link(1e-3, 1e9), [2, 4, 8])}
    assert rows[1].serial_s == pytest.approx(1.2) and rows[1].speedup_serial == 1.0
    # n=2: compute 0.6, comm 2·1e-3 + 1·0.1 = 0.102, step 0.702
    assert rows[2].comm_s == pytest.approx(0.102)
    assert rows[2].speedup_serial == pytest.approx(1.2 / 0.702)
    assert rows[2].speedup_overlap == pytest.approx(2.0)
    # n=4: compute 0.3, comm 6e-3 + 1.5·0.1 = 0.156, step 0.456; overlap 0.1 + 0.2
    assert rows[4].speedup_serial == pytest.approx(1.2 / 0.456)
    assert rows[4].efficiency_serial == pytest.approx(1.2 / 0.456 / 4)
    assert rows[4].efficiency_overlap == pytest.approx(1.0)
    # n=8: compute 0.15, comm 14e-3 + 1.75·0.1 = 0.189; overlap 0.05 + 0.189 = 0.239
    assert rows[8].serial_s == pytest.approx(0.339)
    assert rows[8].speedup_overlap == pytest.approx(1.2 / 0.239)
    # The same compute measured at 2 workers projects the same way (strong scaling).
    w2 = Workload("hand", workers=2, compute_s=0.6, grad_bytes=10**8)
    assert project(w2, Link(1e-3, 1e9), [4])[1].serial_s == pytest.approx(0.456)
    # Weak scaling: compute stays 0.3 s per step, n samples per step: speedup = 4 · 0.3/0.456
    weak = Workload("weak", workers=1, compute_s=0.3, grad_bytes=10**8, scaling="weak")
    assert project(weak, Link(1e-3, 1e9), [4])[1].speedup_serial == pytest.approx(4 * 0.3 / 0.456)


# --------------------------------------------------------------------------- inputs from records


def test_grad_bytes_rebuilt_from_model_name() -> None:
    # mlp-128 on 28x28x1, 10 classes: (784·128 + 128 + 128·10 + 10) · 4 bytes
    assert grad_bytes_of(projection_record("ddp", 2, 1.0, 0.1)) == (784 * 128 + 128 + 1280 + 10) * 4
    assert grad_bytes_of(projection_record("ddp", 2, 1.0, 0.1, grad_bytes=123)) == 123


def test_workloads_take_medians_and_skip_param_avg() -> None:
    records = [projection_record("ddp", 2, t, c, grad_bytes=400_000)
               for t, c in ((1.0, 0.2), (1.2, 0.2), (5.0, 0.3))]
    records.append(projection_record("param-avg", 2, 1.0, 0.01))
    records.append({**projection_record("mpi", 2, 1.0, 0.1), "status": "failed"})
    workloads, skipped = workloads_from_records(records)
    (w,) = workloads
    assert w.runs == 3 and w.workers == 2
    assert w.compute_s == pytest.approx((1.2 - 0.2) / 100)  # median of 8, 10, 47 ms
    assert w.measured_comm_s == pytest.approx(0.002)
    assert not w.overlaps  # 400 KB fits DDP's first 1 MiB bucket: nothing to overlap
    assert skipped and "param-avg" in skipped[0]


def test_overlap_needs_more_than_one_bucket() -> None:
    assert overlaps("ddp", False, 2 * 2**20, 25.0, "cuda")
    assert not overlaps("ddp", False, 500_000, 25.0, "cuda")
    assert overlaps("custom", True, 2 * 2**20, 1.0, "cuda")
    assert not overlaps("custom", False, 2 * 2**20, 1.0, "cuda")
    assert not overlaps("mpi", False, 10**9, 25.0, "cuda")
    # On CPU the collectives share backward's cores: measured steps follow the serial schedule.
    assert not overlaps("ddp", False, 2 * 2**20, 25.0, "cpu")


def test_links_fitted_per_backend(tmp_path: Path) -> None:
    rows = [{"backend": b, "size_bytes": m, "workers": 2,
             "latency_median_s": ring_allreduce_s(m, 2, Link(a, beta))}
            for b, a, beta in (("gloo", 50e-6, 1e9), ("mpi", 5e-6, 4e9))
            for m in parse_sizes("1KB:16MB")]
    path = tmp_path / "bench_comm.json"
    path.write_text(json.dumps({"kind": "bench-comm", "workers": 2, "results": rows}))
    links = links_from_bench_comm(tmp_path)
    assert links["gloo"].alpha_s == pytest.approx(50e-6)
    assert links["mpi"].beta_Bps == pytest.approx(4e9)


# --------------------------------------------------------------------------- the command


def test_project_command_writes_table_and_plot(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    append_record(tmp_path,
                  projection_record("ddp", 2, 2.0, 0.5, steps=100, grad_bytes=4 * 10**6))
    code = main(["project", str(tmp_path), "--workers", "8,64", "--bandwidth", "25Gbit/s",
                 "--latency", "5us"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2(n-1)·α + 2(n-1)/n · G/β" in out and "projection, not a measurement" in out
    # One summary row per strategy, its parts adding up: 20 ms = 15 ms compute + 5 ms comm.
    assert "ddp ×2" in out and "20.00 = 15.00 + 5.00" in out
    assert "measured at 2 workers (the most" in out and "applies here" not in out
    assert main(["project", str(tmp_path), "--workers", "8,64", "--bandwidth", "25Gbit/s",
                 "--latency", "5us", "--details"]) == 0
    assert "applies here: no overlap" in capsys.readouterr().out
    doc = json.loads((tmp_path / "projection.json").read_text())
    (w,) = doc["workloads"]
    # compute 15 ms/step at 2 workers -> 30 ms on 1, 3.75 ms on 8; comm 2·7·5us + 1.75·4e6/3.125e9
    row8 = next(r for r in w["rows"] if r["workers"] == 8)
    assert row8["compute_s"] == pytest.approx(0.00375)
    assert row8["comm_s"] == pytest.approx(70e-6 + 1.75 * 4e6 / 3.125e9)
    assert (tmp_path / "projection.png").stat().st_size > 0


def test_project_of_a_runs_file_writes_beside_it(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    append_record(tmp_path,
                  projection_record("ddp", 2, 2.0, 0.5, steps=100, grad_bytes=4 * 10**6))
    assert main(["project", str(tmp_path / "runs.jsonl"), "--workers", "8", "--bandwidth",
                 "25Gbit/s", "--latency", "5us"]) == 0
    assert (tmp_path / "projection.json").is_file() and (tmp_path / "projection.png").is_file()


def test_project_typed_in_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["project", "--compute-s", "0.29", "--grad-bytes", "100MB", "--scaling", "weak",
                 "--overlap", "--workers", "8,32", "--bandwidth", "25Gbit/s", "--latency", "5us",
                 "--name", "resnet-50", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "projection.json").read_text())
    row = doc["workloads"][0]["rows"][-1]
    assert row["workers"] == 32
    assert row["compute_s"] == pytest.approx(0.29)  # weak scaling: per-worker compute constant
    assert "resnet-50" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["project", "--compute-s", "0.1", "--grad-bytes", "1MB", "--workers", "8"],  # no network
    ["project", "--compute-s", "0.1", "--grad-bytes", "1MB", "--bandwidth", "1GB/s",
     "--latency", "1us", "--from-bench-comm", "x.json"],  # both network sources
    ["project", "--bandwidth", "1GB/s", "--latency", "1us"],  # no inputs at all
    ["project", "--compute-s", "0.1", "--grad-bytes", "1MB", "--bandwidth", "1GB/s",
     "--latency", "1us", "--workers", "0"],
])
def test_project_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("distbench: error: ") and err.count("\n") == 1


def test_fit_uses_the_mean_latency() -> None:
    from distbench.comm.project import expected_latency

    assert expected_latency({"latency_mean_s": 2.0, "latency_median_s": 1.0}) == 2.0
    assert expected_latency({"times_s": [1.0, 1.0, 4.0], "latency_median_s": 1.0}) == 2.0
    assert expected_latency({"latency_median_s": 1.0}) == 1.0
