"""1-worker rows while another process keeps one core busy, against the same rows on a quiet
machine, under each OpenMP wait policy.

Command: DISTBENCH_DATA=../shared/data python benchmarks/contention.py [--repeats 3]
             [--strategies single,tf-single] [--policies default,PASSIVE]

Each `distbench run` (mlp-128 on Fashion-MNIST, 1 epoch, all cores) runs quiet, then beside a
process spinning on one core (a Python busy loop, the typical "something else is running").
`OMP_WAIT_POLICY` is set for the run's workers: `default` leaves the runtime's own choice
(libgomp spins a while at every barrier before sleeping), `PASSIVE` makes idle threads sleep
at once. Prints the median epoch time of each (strategy, policy, load) and
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


def one_run(strategy: str, policy: str, out: Path) -> float:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
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
    parser.add_argument("--policies", default="default,PASSIVE")
    args = parser.parse_args()
    strategies, policies = args.strategies.split(","), args.policies.split(",")
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("quiet", "one core busy"):
            busy = multiprocessing.Process(target=spin, daemon=True) if load != "quiet" else None
            if busy:
                busy.start()
            try:
                for r in range(args.repeats):
                    for strategy in strategies:
                        for policy in policies:
                            out = Path(tmp) / f"{strategy}-{policy}-{load[0]}-{r}"
                            times.setdefault((strategy, policy, load), []).append(
                                one_run(strategy, policy, out))
            finally:
                if busy:
                    busy.terminate()
    for strategy in strategies:
        for policy in policies:
            quiet = median(times[(strategy, policy, "quiet")])
            loaded = median(times[(strategy, policy, "one core busy")])
            print(f"{strategy:10} OMP_WAIT_POLICY={policy:8} quiet {quiet:6.2f} s  one core busy "
                  f"{loaded:6.2f} s  contention_ratio={loaded / quiet:.2f} "
                  f"({'met' if loaded / quiet <= TARGET else 'missed'}, target <= {TARGET})")


if __name__ == "__main__":
    main()
