"""Epoch time of each TensorFlow row against its PyTorch counterpart, on one workload.

Command: python benchmarks/tf_vs_torch.py [--epochs 2] [--repeats 3] [--dataset fashion-mnist]
             [--tf-steps-per-execution N] [--out DIR]

Runs `distbench run` `--repeats` times per strategy, each in a fresh process, the strategies
interleaved within each repeat (mlp-128, Fashion-MNIST, global batch 32, the same seed and flags
for all; `--tf-steps-per-execution` goes to the TF rows, default: distbench's), then prints, per
pair, both median epoch times (over every epoch of every repeat) and
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
    if name.startswith("tf-") and args.tf_steps_per_execution:
        cmd += ["--tf-steps-per-execution", str(args.tf_steps_per_execution)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    records = load_records(out)[before:] if (out / "runs.jsonl").exists() else []
    if proc.returncode != 0 or not records or records[-1]["status"] != "ok":
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"{name} failed: {lines[-1] if lines else 'no output'}"
    return records[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tf-steps-per-execution", type=int)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--out", help="results directory (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tf-vs-torch-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"workload: mlp-128, {args.dataset}, global batch 32, {args.epochs} epoch(s); "
          f"records in {out / 'runs.jsonl'}")
    done: dict[tuple[str, int], list[dict] | str] = {}
    for _ in range(args.repeats):
        for tf_name, torch_name, workers in PAIRS:
            for name in (torch_name, tf_name):
                runs = done.setdefault((name, workers), [])
                if isinstance(runs, list) and len(runs) < args.repeats:
                    result = unavailable(name) or run(name, workers, args, out)
                    if isinstance(result, str):
                        done[name, workers] = result
                    else:
                        runs.append(result)
    for tf_name, torch_name, workers in PAIRS:
        tf_runs, torch_runs = done[tf_name, workers], done[torch_name, workers]
        label = f"{tf_name}/{torch_name}"
        if isinstance(tf_runs, str) or isinstance(torch_runs, str):
            reasons = [r for r in (torch_runs, tf_runs) if isinstance(r, str)]
            print(f"skip {label} (x{workers}): {'; '.join(reasons)}")
            continue
        tf_epoch = median([e for r in tf_runs for e in r["epoch_s"]])
        torch_epoch = median([e for r in torch_runs for e in r["epoch_s"]])
        print(f"{label:<22} x{workers}: epoch {tf_epoch:7.2f} s vs {torch_epoch:7.2f} s   "
              f"ratio_{label}={tf_epoch / torch_epoch:.2f}   test accuracy "
              f"{tf_runs[0]['test_accuracy']:.2%} vs {torch_runs[0]['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
