"""Forked against exec'd workers: does the warm start change what is timed, and what does it save?

Command: python benchmarks/worker_start.py [--repeats 5] [--dataset mnist-5k] [--out DIR]

For each row (single, ddp x2, mpi x2, tf-single, tf-multiworker x2; the default study's settings
otherwise) runs `distbench run` once with its workers forked from a fork server, as
`distbench compare` starts them by default, and once exec'd, as `distbench run` does, in
alternating order, `--repeats` times. Prints per row the median of the paired ratios fork/exec of
the training time (`train_ratio_<row>=`; near 1: the warm start leaves the timed epochs alone)
and the medians of `startup_s` and of the whole run's wall time for each way of starting. A row
whose framework is missing is skipped with the reason.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distbench.launch.local import run_dir
from distbench.launch.warmstart import warm_pool
from distbench.results.records import load_records
from distbench.strategies import STRATEGIES, missing_framework
from distbench.system.timing import median

ROWS = [("single", 1), ("ddp", 2), ("mpi", 2), ("tf-single", 1), ("tf-multiworker", 2)]


def run(name: str, workers: int, dataset: str, out: Path, env: dict[str, str]
        ) -> tuple[dict, float]:
    """The run's record and its wall time; a failed run stops the benchmark."""
    before = len(load_records(out)) if (out / "runs.jsonl").exists() else 0
    cmd = [sys.executable, "-m", "distbench", "run", "--strategy", name, "--workers",
           str(workers), "--dataset", dataset, "--no-progress", "--out", str(out)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    records = load_records(out)[before:] if (out / "runs.jsonl").exists() else []
    if proc.returncode != 0 or not records or records[-1]["status"] != "ok":
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise SystemExit(f"{name} x{workers} failed: {lines[-1] if lines else 'no output'}")
    return records[-1], wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--out", help="results directory (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="distbench-worker-start-"))
    rows = []
    for name, workers in ROWS:
        reason = missing_framework(name) if name in STRATEGIES else f"{name} is not registered"
        if reason:
            print(f"skipped {name}: {reason}")
        else:
            rows.append((name, workers))
    seen: dict[tuple[str, int, str], list[tuple[dict, float]]] = {}
    with warm_pool(run_dir(), out / "logs") as pool:
        for name, _ in rows:
            pool.ensure(STRATEGIES[name].framework.value)
        print("fork servers ready: " + ", ".join(f"{f} {s:.1f} s"
                                                 for f, s in pool.start_s.items()))
        ways = {"fork": {**os.environ, **pool.env}, "exec": dict(os.environ)}
        for repeat in range(args.repeats):
            order = ["fork", "exec"] if repeat % 2 == 0 else ["exec", "fork"]
            for name, workers in rows:
                for way in order:
                    seen.setdefault((name, workers, way), []).append(
                        run(name, workers, args.dataset, out, ways[way]))
    for name, workers in rows:
        fork, execd = seen[(name, workers, "fork")], seen[(name, workers, "exec")]
        assert all(r["worker_start"] == "fork" for r, _ in fork)
        assert all(r["worker_start"] == "exec" for r, _ in execd)
        ratios = [f["train_s"] / e["train_s"] for (f, _), (e, _) in zip(fork, execd)]
        label = f"{name}x{workers}"
        print(f"{label}: train fork {median([r['train_s'] for r, _ in fork]):.3f} s, exec "
              f"{median([r['train_s'] for r, _ in execd]):.3f} s; start-up fork "
              f"{median([r['startup_s'] for r, _ in fork]):.2f} s, exec "
              f"{median([r['startup_s'] for r, _ in execd]):.2f} s; run wall fork "
              f"{median([w for _, w in fork]):.2f} s, exec {median([w for _, w in execd]):.2f} s")
        print(f"train_ratio_{label}={median(ratios):.3f} (paired runs: "
              f"{', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"records: {out / 'runs.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
