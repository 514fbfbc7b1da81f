"""Epoch time of each TensorFlow row against its PyTorch counterpart, on one workload.

Command: python benchmarks/tf_vs_torch.py [--epochs 2] [--dataset fashion-mnist] [--out DIR]

Runs `distbench run` once per strategy, each in a fresh process (mlp-128, Fashion-MNIST, global
batch 32, the same seed and flags for all), then prints, per pair, both median epoch times and
`ratio_<tf>/<torch>=<tf / torch>` for tf-single/single, tf-mirrored/ddp, tf-custom/custom and
tf-multiworker/ddp (distributed rows with 2 workers or replicas). A ratio above 1 means the
TensorFlow row is slower. A strategy that is not registered, or whose framework is missing, is
skipped with the reason. Records stay in DIR/runs.jsonl for `distbench report`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from distbench.results.records import load_records
from distbench.strategies import STRATEGIES, missing_framework
from distbench.system.timing import median

PAIRS = [("tf-single", "single", 1), ("tf-mirrored", "ddp", 2), ("tf-custom", "custom", 2),
         ("tf-multiworker", "ddp", 2)]


def unavailable(name: str) -> str | None:
    if name not in STRATEGIES:
        return f"{name} is not registered in distbench.strategies"
    return missing_framework(name)


def run(name: str, workers: int, args: argparse.Namespace, out: Path) -> dict | str:
    """The run's record, or why there is none."""
    before = len(load_records(out)) if (out / "runs.jsonl").exists() else 0
    cmd = [sys.executable, "-m", "distbench", "run", "--strategy", name, "--workers",
           str(workers), "--dataset", args.dataset, "--model", "mlp-128", "--batch-size", "32",
           "--epochs", str(args.epochs), "--seed", "0", "--no-progress", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    records = load_records(out)[before:] if (out / "runs.jsonl").exists() else []
    if proc.returncode != 0 or not records or records[-1]["status"] != "ok":
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"{name} failed: {lines[-1] if lines else 'no output'}"
    return records[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--out", help="results directory (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tf-vs-torch-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"workload: mlp-128, {args.dataset}, global batch 32, {args.epochs} epoch(s); "
          f"records in {out / 'runs.jsonl'}")
    done: dict[tuple[str, int], dict | str] = {}
    for tf_name, torch_name, workers in PAIRS:
        for name in (torch_name, tf_name):
            if (name, workers) not in done:
                done[name, workers] = unavailable(name) or run(name, workers, args, out)
        tf_run, torch_run = done[tf_name, workers], done[torch_name, workers]
        label = f"{tf_name}/{torch_name}"
        if isinstance(tf_run, str) or isinstance(torch_run, str):
            reasons = [r for r in (torch_run, tf_run) if isinstance(r, str)]
            print(f"skip {label} (x{workers}): {'; '.join(reasons)}")
            continue
        tf_epoch, torch_epoch = median(tf_run["epoch_s"]), median(torch_run["epoch_s"])
        print(f"{label:<22} x{workers}: epoch {tf_epoch:7.2f} s vs {torch_epoch:7.2f} s   "
              f"ratio_{label}={tf_epoch / torch_epoch:.2f}   test accuracy "
              f"{tf_run['test_accuracy']:.2%} vs {torch_run['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
