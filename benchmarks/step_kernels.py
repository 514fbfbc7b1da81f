"""Where a `single` step's time goes, kernel by kernel, under each OpenMP wait setting.

Command: DISTBENCH_DATA=../shared/data python benchmarks/step_kernels.py [--steps 300] [--rows 12]

Workload: distbench's own `Trainer.step` (mlp-128 on Fashion-MNIST, the fused Adam PyTorch rows
use by default, all cores), at batch 32 and 128, on batches gathered beforehand. Each wait
setting runs in a process of its own, because libgomp reads it once, when it loads:
  - distbench's default, `GOMP_SPINCOUNT=3000`: a thread that finished a parallel region sleeps
    after a short spin, and the next region must wake it;
  - `OMP_WAIT_POLICY=active`: the threads spin between regions and never sleep.
Prints, per setting and batch size:
  - the step's median time over rounds run with no timer inside, and the compute-bound limit
    of a step (`overhead.py`'s: training FLOPs over the matmul FLOP/s measured right before);
  - each ATen call's own time within the step, timed around the call itself by a
    TorchDispatchMode. The timer's own cost falls between the calls, not inside them. Not
    torch.profiler: under it the batch-32 weight gradient took 298 us a call, against 81 us
    here and 75 us alone (docs/measurements.md, "A seventh sitting").
A region that waits for a sleeping thread shows as a small kernel that takes long: at batch 128,
the output layer's 128x128x10 `addmm`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict

from distbench.system.threads import SPIN_DEFAULT, WAIT_VARS, wait_defaults

SETTINGS = {f"GOMP_SPINCOUNT={SPIN_DEFAULT} (distbench's default)": wait_defaults({}),
            "OMP_WAIT_POLICY=active": {"OMP_WAIT_POLICY": "active"}}


def measure(batch: int, steps: int, rows: int) -> None:
    """The step's time, then its kernels' own times, in this process's wait setting."""
    import torch
    from overhead import (  # this script's folder
        fused_trainer,
        matmul_flops,
        training_flops_per_sample,
    )
    from torch.utils._python_dispatch import TorchDispatchMode

    from distbench.data import load_dataset
    from distbench.system.timing import clock, median

    trainer = fused_trainer(load_dataset("fashion-mnist"), batch)
    batches = list(trainer.batches(epoch=0))[:steps]
    for i, b in enumerate(batches[:50]):
        trainer.step(*b, i)
    limit = training_flops_per_sample(trainer.net) * batch / matmul_flops(samples=5)
    rounds = []
    for _ in range(5):
        start = clock()
        for i, b in enumerate(batches):
            trainer.step(*b, i)
        rounds.append((clock() - start) / len(batches))
    own: dict[tuple[str, tuple[tuple[int, ...], ...]], float] = defaultdict(float)

    class KernelTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            start = clock()
            result = func(*args, **(kwargs or {}))
            shapes = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
            own[str(func.overloadpacket.__name__), shapes] += clock() - start
            return result

    with KernelTimer():
        for i, b in enumerate(batches):
            trainer.step(*b, i)
    n = len(batches)
    print(f"  batch {batch}: step {median(rounds) * 1e3:.3f} ms (median of 5 rounds of {n}, "
          f"range {min(rounds) * 1e3:.3f}-{max(rounds) * 1e3:.3f}) = "
          f"{median(rounds) / limit:.2f} x the limit of {limit * 1e3:.3f} ms; kernels' own time "
          f"{sum(own.values()) / n * 1e3:.3f} ms a step, the largest:")
    for (name, shapes), seconds in sorted(own.items(), key=lambda kv: -kv[1])[:rows]:
        print(f"    {seconds / n * 1e6:7.1f} us  {name} {list(shapes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        for batch in (32, 128):
            measure(batch, args.steps, args.rows)
        return
    for name, wait in SETTINGS.items():
        print(f"\n{name}:", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in WAIT_VARS} | wait
        subprocess.run([sys.executable, __file__, "--child", "--steps", str(args.steps),
                        "--rows", str(args.rows)], env=env, check=True)


if __name__ == "__main__":
    main()
