"""Model state per rank of ddp, zero and fsdp, measured against the ZeRO paper's accounting.

Command: DISTBENCH_DATA=../shared/data python benchmarks/memory.py [--workers 2,4]
             [--strategies ddp,zero,fsdp] [--model mlp-wide] [--out results/memory]

Each run is `distbench run` on a tiny synthetic set (64 samples, global batch 32: 1 epoch of 2
steps, no warm-up or calibration), fp32 Adam. Every rank counts the parameters, gradients and
optimizer state it holds after its first step (the record's `model_state_bytes`); the largest
rank is compared with Rajbhandari et al., SC'20 (ZeRO), for Ψ parameters and N ranks, in bytes:
DDP 16Ψ (4 weights + 4 gradients + 8 Adam moments), ZeRO-1 8Ψ + 8Ψ/N, FSDP (ZeRO-3) 16Ψ/N.
The target is within 10%. Run it on a quiet machine with memory for N full replicas
(mlp-wide: about 0.8 GB per DDP rank).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# Bytes per parameter for each sharding, from the registry's `sharding` fact.
ACCOUNTING = {
    "none": lambda n: 16.0,
    "optimizer": lambda n: 8.0 + 8.0 / n,
    "full": lambda n: 16.0 / n,
}
TARGET = 0.10


def run(strategy: str, workers: int, model: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "distbench", "run", "--strategy", strategy, "--workers",
           str(workers), "--model", model, "--dataset", "synthetic", "--synthetic-samples", "64",
           "--batch-size", "32", "--epochs", "1", "--warmup-steps", "0",
           "--calibration-steps", "0", "--optimizer", "adam", "--no-progress", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{strategy} x{workers} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return json.loads((out / "runs.jsonl").read_text().splitlines()[-1])


def main() -> int:
    from distbench.strategies import strategy_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,4")
    parser.add_argument("--strategies", default="ddp,zero,fsdp")
    parser.add_argument("--model", default="mlp-wide")
    parser.add_argument("--out", help="keep the records here (default: a temporary folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="distbench-memory-"))
    print(f"{'strategy':<10}{'N':>3}{'Ψ':>13}{'per rank (MB)':>22}{'bytes/Ψ':>10}"
          f"{'paper':>8}{'ratio':>8}")
    misses = 0
    for strategy in args.strategies.split(","):
        sharding = strategy_info(strategy).sharding.value
        for workers in (int(w) for w in args.workers.split(",")):
            record = run(strategy, workers, args.model, root / f"{strategy}-w{workers}")
            psi = record["grad_bytes"] / 4  # fp32: 4 bytes per parameter
            per_rank = record["model_state_bytes"]
            measured = max(per_rank) / psi
            paper = ACCOUNTING[sharding](workers)
            ratio = measured / paper
            misses += abs(ratio - 1) > TARGET
            ranks = "/".join(f"{b / 2**20:.0f}" for b in per_rank)
            print(f"{strategy:<10}{workers:>3}{psi:>13,.0f}{ranks:>22}{measured:>10.2f}"
                  f"{paper:>8.2f}{ratio:>8.3f}")
    print(f"records in {root}; {misses} cell(s) off the accounting by more than {TARGET:.0%}")
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
