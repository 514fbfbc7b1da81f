"""Calibrate `distbench project` on this machine: predicted against measured 2-worker step time.

Command: DISTBENCH_DATA=../shared/data python benchmarks/calibrate_projection.py \\
             [--repeats 3] [--wait-load 1.5] [--out results/calibration]

1. `distbench bench-comm --backends gloo,mpi --workers 2 --threads-per-worker 1 --sizes 1KB:16MB`
   and α, β fitted per backend (relative least squares on t = 2(n-1)α + 2(n-1)/n · bytes/β).
2. For mlp-128 and cnn on Fashion-MNIST, global batch 128, 1 epoch, every worker 1 thread,
   interleaved per repeat: `single` x1 (the compute input), ddp x2, mpi x2, and `single` x1 at
   batch 64 (the per-worker batch at 2 workers; used only to diagnose the compute term).
3. Prediction, as `distbench project` makes it from the single x1 records: compute(2) = W / 2
   with W = (train_s - comm_s) / steps of single x1; comm(2) = ring model with the strategy's
   backend fit (ddp: gloo, mpi: mpi); step = compute + comm, or forward + max(backward, comm)
   where `project` says the overlapped schedule applies (ddp with more than one bucket).
4. Measured step = train_s / steps of the 2-worker runs (median over repeats); the relative error
   (predicted - measured) / measured is printed, target |error| <= 15%. The two terms are also
   compared separately with what the 2-worker runs measured ((train_s - comm_s) / steps and
   comm_s / steps), which says which term the model misses when the target is missed.
The 1-minute load average is printed before and after; --wait-load waits (up to --max-wait s)
for the machine to be quieter than that before measuring.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from distbench.bench_comm import BenchSpec, print_bench_table, run_bench_comm
from distbench.cost_model import format_bytes, parse_sizes, ring_allreduce_s, step_times
from distbench.project import links_from_bench_comm, overlaps, workloads_from_records
from distbench.results import load_records
from distbench.timing import median

MODELS = ("mlp-128", "cnn")
COMMON = ["--epochs", "1", "--threads-per-worker", "1", "--no-progress"]
BATCH = 128
# (label, strategy, workers, batch)
RUNS = [("single", "single", 1, BATCH), ("ddp", "ddp", 2, BATCH), ("mpi", "mpi", 2, BATCH),
        ("single-half", "single", 1, BATCH // 2)]
BACKEND = {"ddp": "gloo", "mpi": "mpi"}
TARGET = 0.15
DATASET = "fashion-mnist"


def load1() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit: float, max_wait: float) -> None:
    start = time.monotonic()
    while load1() > limit and time.monotonic() - start < max_wait:
        print(f"load average {load1():.2f} > {limit}: waiting", flush=True)
        time.sleep(30)
    print(f"load average (1 min) at start: {load1():.2f}", flush=True)


def distbench_run(label: str, strategy: str, workers: int, batch: int, model: str,
                  dataset: str, out: Path) -> None:
    args = ["--strategy", strategy, "--workers", str(workers), "--batch-size", str(batch),
            "--model", model, "--dataset", dataset, *COMMON, "--out", str(out / f"{model}-{label}")]
    proc = subprocess.run([sys.executable, "-m", "distbench", "run", *args],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"distbench run {' '.join(args)} failed:\n{proc.stderr}")


def per_step(out: Path, model: str, label: str) -> dict[str, float]:
    """Medians over repeats of step, compute and comm seconds per step, and the gradient size."""
    records = [r for r in load_records(out / f"{model}-{label}") if r["status"] == "ok"]
    return {
        "step": median([r["train_s"] / r["steps"] for r in records]),
        "compute": median([(r["train_s"] - (r["comm_s"] or 0)) / r["steps"] for r in records]),
        "comm": median([(r["comm_s"] or 0) / r["steps"] for r in records]),
        "grad_bytes": records[0]["grad_bytes"], "runs": len(records),
        "bucket_mb": records[0]["config"]["bucket_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wait-load", type=float, help="wait until the 1-min load is below this")
    parser.add_argument("--max-wait", type=float, default=1200.0)
    parser.add_argument("--out", default=f"results/calibration-{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("--dataset", default=DATASET, help="a quicker one for a dry run")
    args = parser.parse_args()
    out = Path(args.out)
    if args.wait_load:
        wait_for_quiet(args.wait_load, args.max_wait)
    else:
        print(f"load average (1 min) at start: {load1():.2f}", flush=True)

    spec = BenchSpec(["gloo", "mpi"], parse_sizes("1KB:16MB"), workers=2, repeats=30,
                     warmup=5, threads_per_worker=1)
    bench = run_bench_comm(spec, out / "bench-comm")
    print_bench_table(bench)
    links = links_from_bench_comm(out / "bench-comm")
    for backend, link in links.items():
        print(f"fit {backend}: {link.describe()}")

    loads = [load1()]
    for repeat in range(args.repeats):
        for model in MODELS:
            for label, strategy, workers, batch in RUNS:
                loads.append(load1())
                print(f"repeat {repeat + 1}/{args.repeats}: {model} {label} "
                      f"(load {loads[-1]:.2f})", flush=True)
                distbench_run(label, strategy, workers, batch, model, args.dataset, out)
    print(f"load average (1 min) at end: {load1():.2f}; over the runs: median "
          f"{median(loads):.2f}, max {max(loads):.2f}")

    print(f"\n2-worker step time, predicted from single x1 + the α-β fit, against measured "
          f"(medians of {args.repeats} runs; times in ms per step)")
    header = (f"{'model':8} {'strategy':8} {'grad':>7} {'schedule':>10} {'predicted':>9} "
              f"{'measured':>9} {'error':>7} | {'compute pred/meas':>17} "
              f"{'comm pred/meas':>15} {'single@64':>9}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for model in MODELS:
        single = per_step(out, model, "single")
        half = per_step(out, model, "single-half")
        workloads, _ = workloads_from_records(load_records(out / f"{model}-single"))
        (w,) = workloads
        for strategy in ("ddp", "mpi"):
            meas = per_step(out, model, strategy)
            link = links[BACKEND[strategy]]
            comm = ring_allreduce_s(w.grad_bytes, 2, link)
            model_2 = step_times(w.compute_at(2), comm, 2, 2 / 3)
            overlapped = overlaps(strategy, False, w.grad_bytes, meas["bucket_mb"])
            predicted = model_2.overlap_s if overlapped else model_2.serial_s
            error = (predicted - meas["step"]) / meas["step"]
            worst = max(worst, abs(error))
            print(f"{model:8} {strategy:8} {format_bytes(w.grad_bytes):>7} "
                  f"{'overlap' if overlapped else 'serial':>10} {predicted * 1e3:9.3f} "
                  f"{meas['step'] * 1e3:9.3f} {error:+7.1%} | "
                  f"{w.compute_at(2) * 1e3:8.3f}/{meas['compute'] * 1e3:<8.3f} "
                  f"{comm * 1e3:7.3f}/{meas['comm'] * 1e3:<7.3f} {half['step'] * 1e3:9.3f}")
        fixed = half["step"] - single["compute"] / 2
        print(f"{model:8} single x1 step {single['step'] * 1e3:.3f} ms at batch {BATCH}, "
              f"{half['step'] * 1e3:.3f} ms at batch {BATCH // 2}: W/2 = "
              f"{single['compute'] / 2 * 1e3:.3f} ms, so {fixed * 1e3:+.3f} ms per step does "
              f"not halve with the batch")
    verdict = "met" if worst <= TARGET else "missed"
    print(f"\nworst |error| = {worst:.1%} (target <= {TARGET:.0%}: {verdict})")
    print(f"records and bench-comm output in {out}")


if __name__ == "__main__":
    main()
