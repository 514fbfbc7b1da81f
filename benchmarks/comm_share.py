"""`ddp`'s communication share, timed by its hook, against `custom`'s, timed around its calls.

Command: DISTBENCH_DATA=../shared/data python benchmarks/comm_share.py [--repeats 3]

Workload: mlp-128 on Fashion-MNIST, 2 workers, global batch 32, one epoch, gloo. Its 407 KB of
gradients fit in one bucket for both strategies, so neither can overlap the all-reduce with
backward and both shares measure the same thing: one all-reduce of the same bytes per step,
the wait for the slower rank included. `ddp`'s comes from the communication hook (last bucket
launched to last completion), `custom`'s from the clock around its blocking `all_reduce`.
Runs alternate (ddp, custom) per repeat; each pair prints both shares and
`share_ratio=<ddp share / custom share>`; the target is within 20% of each other in every pair
(0.8 <= ratio <= 1.25). The calibration estimate `ddp` keeps as `comm_s_calibrated` is printed
beside it for reference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from distbench.results.records import load_records

RUN = ["--dataset", "fashion-mnist", "--model", "mlp-128", "--workers", "2", "--epochs", "1",
       "--batch-size", "32", "--threads-per-worker", "1", "--no-progress"]
LOW, HIGH = 0.8, 1.25


def share(strategy: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "distbench", "run", "--strategy", strategy,
                           *RUN, "--out", str(out)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{strategy} failed:\n{proc.stderr}")
    return load_records(out)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    met = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            ddp = share("ddp", Path(tmp) / f"ddp{r}")
            custom = share("custom", Path(tmp) / f"custom{r}")
            ratio = ddp["comm_fraction"] / custom["comm_fraction"]
            met += LOW <= ratio <= HIGH
            calibrated = ddp.get("comm_s_calibrated")
            print(f"run {r + 1}: ddp {ddp['comm_fraction']:.1%} of {ddp['train_s']:.2f} s "
                  f"(calibration {calibrated / ddp['train_s']:.1%}), custom "
                  f"{custom['comm_fraction']:.1%} of {custom['train_s']:.2f} s  "
                  f"share_ratio={ratio:.2f}", flush=True)
    print(f"within 20% in {met} of {args.repeats} runs "
          f"({'met' if met == args.repeats else 'missed'}, target: every run)")


if __name__ == "__main__":
    main()
