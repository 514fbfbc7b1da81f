"""1-worker rows while another process keeps one core busy, against the same rows on a quiet
machine, under each OpenMP wait setting.

Command: DISTBENCH_DATA=../shared/data python benchmarks/contention.py [--repeats 3]
             [--strategies single,tf-single]
             [--settings default,OMP_WAIT_POLICY=PASSIVE,GOMP_SPINCOUNT=10000]

Each `distbench run` (mlp-128 on Fashion-MNIST, 1 epoch, all cores) runs quiet, then beside a
process spinning on one core (a Python busy loop, the typical "something else is running").
Each setting is the environment of the run's workers: `default` leaves distbench's own
choice, `VAR=VALUE[+VAR=VALUE]` sets those variables (`OMP_WAIT_POLICY=PASSIVE` makes libgomp's
idle threads sleep at once, `GOMP_SPINCOUNT=N` lets them spin N iterations at a barrier before
sleeping; libgomp's own default is 300,000, which distbench bounds, see `system.threads`).
Prints the median epoch time of each (strategy, setting, load) and
`contention_ratio=<contended / quiet>`; the target is <= 2.5 (a fair share of the cores, plus a
margin). Run it on an otherwise quiet machine: the busy loop is the only load it may see.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

TARGET = 2.5
RUN = ["--dataset", "fashion-mnist", "--model", "mlp-128", "--epochs", "1", "--no-progress",
       "--calibration-steps", "0"]


def spin() -> None:
    while True:
        pass


def one_run(strategy: str, setting: str, out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if setting != "default":
        env.update(part.split("=", 1) for part in setting.split("+"))
    proc = subprocess.run([sys.executable, "-m", "distbench", "run", "--strategy", strategy,
                           *RUN, "--out", str(out)], capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"{strategy} failed: {proc.stderr.strip()[-400:]}")
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    return float(record["train_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategies", default="single,tf-single")
    parser.add_argument("--settings", default="default,OMP_WAIT_POLICY=PASSIVE")
    args = parser.parse_args()
    strategies, settings = args.strategies.split(","), args.settings.split(",")
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("quiet", "one core busy"):
            busy = multiprocessing.Process(target=spin, daemon=True) if load != "quiet" else None
            if busy:
                busy.start()
            try:
                for r in range(args.repeats):
                    for strategy in strategies:
                        for setting in settings:
                            out = Path(tmp) / f"{strategy}-{setting}-{load[0]}-{r}"
                            times.setdefault((strategy, setting, load), []).append(
                                one_run(strategy, setting, out))
            finally:
                if busy:
                    busy.terminate()
    for strategy in strategies:
        for setting in settings:
            quiet = median(times[(strategy, setting, "quiet")])
            loaded = median(times[(strategy, setting, "one core busy")])
            print(f"{strategy:10} {setting:24} quiet {quiet:6.2f} s  one core busy "
                  f"{loaded:6.2f} s  contention_ratio={loaded / quiet:.2f} "
                  f"({'met' if loaded / quiet <= TARGET else 'missed'}, target <= {TARGET})")


if __name__ == "__main__":
    main()
