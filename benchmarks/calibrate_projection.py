"""Calibrate `distbench project` on this machine: predicted against measured 2-worker step time.

Command: DISTBENCH_DATA=../shared/data python benchmarks/calibrate_projection.py \\
             [--repeats 3] [--wait-load 1.5] [--out results/calibration]

1. `distbench bench-comm --backends gloo,mpi --workers 2 --threads-per-worker 1 --sizes 1KB:16MB`
   and α, β fitted per backend (relative least squares on the mean latency,
   t = 2(n-1)α + 2(n-1)/n · bytes/β).
2. For mlp-128 and cnn on Fashion-MNIST, global batch 128, 1 epoch, every worker 1 thread,
   interleaved per repeat: `single` x1 (the compute input), ddp x2, mpi x2, and, only to
   diagnose the two terms, `single` x1 at batch 64 (the per-worker batch at 2 workers) and
   `custom` x2 (gloo all_reduce timed inside the training loop, which DDP's calibration cannot).
3. Prediction, as `distbench project` makes it from the single x1 records: compute(2) = W / 2
   with W = (train_s - comm_s) / steps of single x1; comm(2) = ring model with the strategy's
   backend fit (ddp: gloo, mpi: mpi); step = compute + comm, or forward + max(backward, comm)
   where `project` says the overlapped schedule applies (ddp with more than one bucket).
4. Measured step = train_s / steps of the 2-worker runs (median over repeats); the relative error
   (predicted - measured) / measured is printed, target |error| <= 15%. The two terms are also
   compared separately with what the 2-worker runs measured ((train_s - comm_s) / steps and
   comm_s / steps), which says which term the model misses when the target is missed.
The 1-minute load average is printed before and after; --wait-load waits (up to --max-wait s)
for the machine to be quieter than that before measuring, and before every run the script waits
(up to --max-wait-run s) until other processes use fewer than --idle-cores cores. For every run
it prints the cores other processes used meanwhile (busy core-seconds from /proc/stat minus the
run's own CPU time), since 2-worker runs on a 2-core machine lose most to anyone else's work.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from distbench.comm.bench_comm import BenchSpec, print_bench_table, run_bench_comm
from distbench.comm.cost_model import format_bytes, parse_sizes, ring_allreduce_s, step_times
from distbench.comm.project import links_from_bench_comm, overlaps, workloads_from_records
from distbench.results.records import load_records
from distbench.system.timing import median

MODELS = ("mlp-128", "cnn")
COMMON = ["--epochs", "1", "--threads-per-worker", "1", "--no-progress"]
BATCH = 128
# (label, strategy, workers, batch)
RUNS = [("single", "single", 1, BATCH), ("ddp", "ddp", 2, BATCH), ("mpi", "mpi", 2, BATCH),
        ("single-half", "single", 1, BATCH // 2), ("custom", "custom", 2, BATCH)]
BACKEND = {"ddp": "gloo", "mpi": "mpi"}
TARGET = 0.15
DATASET = "fashion-mnist"


def load1() -> float:
    return os.getloadavg()[0]


def cpu_busy_s() -> float:
    """Core-seconds this machine has spent busy since boot (all processes), from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def others_cores(seconds: float = 3.0) -> float:
    """Cores busy with other people's processes right now (this script idles meanwhile)."""
    start = cpu_busy_s()
    time.sleep(seconds)
    return max(0.0, (cpu_busy_s() - start) / seconds)


def wait_for_idle_cpu(limit: float, max_wait: float) -> float:
    """Before each run: wait until other processes use less than `limit` cores (or give up)."""
    start = time.monotonic()
    busy = others_cores()
    while busy > limit and time.monotonic() - start < max_wait:
        time.sleep(5)
        busy = others_cores()
    return busy


def wait_for_quiet(limit: float, max_wait: float) -> None:
    start = time.monotonic()
    while load1() > limit and time.monotonic() - start < max_wait:
        print(f"load average {load1():.2f} > {limit}: waiting", flush=True)
        time.sleep(30)
    print(f"load average (1 min) at start: {load1():.2f}", flush=True)


def distbench_run(label: str, strategy: str, workers: int, batch: int, model: str,
                  dataset: str, out: Path) -> float:
    """One `distbench run`; returns the cores other processes used meanwhile, on average."""
    args = ["--strategy", strategy, "--workers", str(workers), "--batch-size", str(batch),
            "--model", model, "--dataset", dataset, *COMMON, "--out", str(out / f"{model}-{label}")]
    busy, mine, wall = cpu_busy_s(), children_cpu_s(), time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "distbench", "run", *args],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"distbench run {' '.join(args)} failed:\n{proc.stderr}")
    others = (cpu_busy_s() - busy) - (children_cpu_s() - mine)
    return max(0.0, others / (time.monotonic() - wall))


def per_step(out: Path, model: str, label: str) -> dict[str, float]:
    """Medians over repeats of step, compute and comm seconds per step, and the gradient size."""
    records = [r for r in load_records(out / f"{model}-{label}") if r["status"] == "ok"]
    return {
        "step": median([r["train_s"] / r["steps"] for r in records]),
        "compute": median([(r["train_s"] - (r["comm_s"] or 0)) / r["steps"] for r in records]),
        "comm": median([(r["comm_s"] or 0) / r["steps"] for r in records]),
        "runs": len(records),
        "bucket_mb": records[0]["config"]["bucket_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wait-load", type=float, help="wait until the 1-min load is below this")
    parser.add_argument("--max-wait", type=float, default=1200.0)
    parser.add_argument("--idle-cores", type=float, default=0.25,
                        help="before each run, wait until other processes use fewer cores")
    parser.add_argument("--max-wait-run", type=float, default=300.0)
    parser.add_argument("--out", default=f"results/calibration-{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("--dataset", default=DATASET, help="a quicker one for a dry run")
    parser.add_argument("--report-only", action="store_true",
                        help="print the comparison again from the files in --out")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report_only:
        report(out)
        return
    if args.wait_load:
        wait_for_quiet(args.wait_load, args.max_wait)
    else:
        print(f"load average (1 min) at start: {load1():.2f}", flush=True)

    spec = BenchSpec(["gloo", "mpi"], parse_sizes("1KB:16MB"), workers=2, repeats=30,
                     warmup=5, threads_per_worker=1)
    bench = run_bench_comm(spec, out / "bench-comm")
    print_bench_table(bench)

    loads, others = [load1()], []
    for repeat in range(args.repeats):
        for model in MODELS:
            for label, strategy, workers, batch in RUNS:
                before = wait_for_idle_cpu(args.idle_cores, args.max_wait_run)
                loads.append(load1())
                during = distbench_run(label, strategy, workers, batch, model, args.dataset, out)
                others.append(during)
                print(f"repeat {repeat + 1}/{args.repeats}: {model} {label}: load "
                      f"{loads[-1]:.2f}; other processes used {before:.2f} cores before, "
                      f"{during:.2f} during", flush=True)
    print(f"load average (1 min) at end: {load1():.2f}; over the runs: median "
          f"{median(loads):.2f}, max {max(loads):.2f}; cores used by other processes during the "
          f"runs: median {median(others):.2f}, max {max(others):.2f}")

    report(out)


def report(out: Path) -> None:
    """Predicted against measured, and the two terms separately, from the files in `out`."""
    links = links_from_bench_comm(out / "bench-comm")
    for backend, link in links.items():
        print(f"fit {backend}: {link.describe()}")
    print("\n2-worker step time predicted from single x1 + the α-β fit, against measured "
          "(ms per step, medians over repeats).\nΔcompute, Δcomm: each term's miss "
          "(predicted - measured) as a share of the measured step; they add up to the error.")
    header = (f"{'model':8} {'strategy':8} {'grad':>7} {'schedule':>8} {'predicted':>9} "
              f"{'measured':>8} {'error':>7} | {'compute p/m':>15} {'comm p/m':>13} "
              f"{'Δcompute':>8} {'Δcomm':>7}")
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
            comm = ring_allreduce_s(w.grad_bytes, 2, links[BACKEND[strategy]])
            model_2 = step_times(w.compute_at(2), comm, 2, 2 / 3)
            overlapped = overlaps(strategy, False, w.grad_bytes, meas["bucket_mb"])
            predicted = model_2.overlap_s if overlapped else model_2.serial_s
            error = (predicted - meas["step"]) / meas["step"]
            worst = max(worst, abs(error))
            d_compute = (w.compute_at(2) - meas["compute"]) / meas["step"]
            print(f"{model:8} {strategy:8} {format_bytes(w.grad_bytes):>7} "
                  f"{'overlap' if overlapped else 'serial':>8} {predicted * 1e3:9.3f} "
                  f"{meas['step'] * 1e3:8.3f} {error:+7.1%} | "
                  f"{w.compute_at(2) * 1e3:7.3f}/{meas['compute'] * 1e3:<7.3f} "
                  f"{comm * 1e3:6.3f}/{meas['comm'] * 1e3:<6.3f} {d_compute:+8.1%} "
                  f"{error - d_compute:+7.1%}")
        custom = (per_step(out, model, "custom") if (out / f"{model}-custom").is_dir()
                  else {"comm": float("nan")})
        fixed = half["step"] - single["compute"] / 2
        print(f"  {model}: single x1 {single['step'] * 1e3:.3f} ms/step at batch {BATCH}, "
              f"{half['step'] * 1e3:.3f} at batch {BATCH // 2} (W/2 = "
              f"{single['compute'] / 2 * 1e3:.3f}: {fixed * 1e3:+.3f} ms/step do not halve); "
              f"gloo all_reduce timed inside the loop (custom x2): "
              f"{custom['comm'] * 1e3:.3f} ms/step")
    verdict = "met" if worst <= TARGET else "missed"
    print(f"\nworst |error| = {worst:.1%} (target <= {TARGET:.0%}: {verdict})")
    print(f"records and bench-comm output in {out}")


if __name__ == "__main__":
    main()
