"""Strong scaling on this machine: each 2-worker strategy against `single`.

Command: DISTBENCH_DATA=../shared/data python benchmarks/scaling.py [--repeats 1] [--epochs 1]

Workload A (compute-bound): cnn on Fashion-MNIST, global batch 128, 2 workers x 1 thread.
  per-core efficiency = (single with 1 thread time / strategy time) / 2 cores
  speed vs all cores  = single with all cores time / strategy time
  targets on 2 cores: best strategy >= 0.92 per-core efficiency, ddp >= 0.85.
Workload B (communication-bound): mlp-128, global batch 32, 2 workers x 1 thread; the best
  2-worker strategy should not be slower than single with all cores.
Every run is a real `distbench run` (separate processes, as a user would start it); runs are
interleaved across strategies per repeat and train times (slowest rank) are compared by median.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from distbench.results.records import load_records
from distbench.system.timing import median

STRATEGIES = [
    ("ddp", []), ("mpi", []), ("custom", []),
    # Buckets small enough that several exist, so all_reduce can start during backward.
    ("custom --overlap", ["--overlap", "--bucket-mb", "0.1"]),
    ("param-avg", []),
]


def run_record(args: list[str], out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "distbench", "run", *args, "--no-progress",
                           "--out", str(out)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"distbench run {' '.join(args)} failed:\n{proc.stderr}")
    return load_records(out)[-1]


def workload(name: str, flags: list[str], repeats: int) -> tuple[dict[str, float], dict]:
    """Median train time per case, and the median communication share (to say why)."""
    cases = {"single x1 thread": ["--strategy", "single", "--threads-per-worker", "1"],
             "single all cores": ["--strategy", "single"]}
    for label, extra in STRATEGIES:
        cases[label] = ["--strategy", label.split()[0], "--workers", "2",
                        "--threads-per-worker", "1", *extra]
    times: dict[str, list[float]] = {k: [] for k in cases}
    comm: dict[str, list[float]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for label, args in cases.items():
                record = run_record([*flags, *args], Path(tmp) / f"{r}")
                times[label].append(record["train_s"])
                comm[label].append(record["comm_fraction"] or 0.0)
                print(f"  [{name}] {label}: {times[label][-1]:.2f} s, per-rank "
                      f"{[round(t, 2) for t in record['per_rank_train_s']]} s, "
                      f"comm {comm[label][-1]:.1%}", flush=True)
    return ({k: median(v) for k, v in times.items()}, {k: median(v) for k, v in comm.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    common = ["--dataset", "fashion-mnist", "--epochs", str(args.epochs)]

    a, a_comm = workload("cnn b128", [*common, "--model", "cnn", "--batch-size", "128"],
                         args.repeats)
    one, all_cores = a["single x1 thread"], a["single all cores"]
    print(f"\ncnn, global batch 128: single 1 thread {one:.2f} s, all cores {all_cores:.2f} s")
    best = 0.0
    for label, _ in STRATEGIES:
        eff = one / a[label] / 2
        best = max(best, eff)
        print(f"  {label:17s} {a[label]:7.2f} s  per_core_efficiency={eff:.3f}  "
              f"speed_vs_all_cores={all_cores / a[label]:.3f}  comm={a_comm[label]:.1%}")
    ddp_eff = one / a["ddp"] / 2
    print(f"  best per-core efficiency {best:.3f} (target >= 0.92); ddp {ddp_eff:.3f} "
          f"(target >= 0.85)")

    b, b_comm = workload("mlp b32", [*common, "--model", "mlp-128", "--batch-size", "32"],
                         args.repeats)
    base = b["single all cores"]
    print(f"\nmlp-128, global batch 32: single all cores {base:.2f} s")
    for label, _ in STRATEGIES:
        print(f"  {label:17s} {b[label]:7.2f} s  speed_vs_all_cores={base / b[label]:.3f}  "
              f"comm={b_comm[label]:.1%}")
    fastest = min(STRATEGIES, key=lambda s: b[s[0]])[0]
    print(f"  best 2-worker strategy: {fastest}, speed_vs_all_cores={base / b[fastest]:.3f} "
          "(target >= 1.0)")


if __name__ == "__main__":
    main()
