"""Gradient synchronisation of each strategy against the raw collective for the same bytes.

Command: python benchmarks/comm.py [--repeats 200]

Starts 2 ranks under mpiexec; each rank joins both MPI and a gloo process group. For the gradient
sizes of mlp-128 (~407 KB) and cnn (~1.7 MB) it times, in one run and interleaved:
  raw gloo   torch.distributed.all_reduce of one flat buffer of that size
  raw MPI    mpi4py Allreduce(IN_PLACE) of the same buffer
  raw MPI after backward
             the same call on the buffer `mpi`'s gradients live in, right after the backward that
             wrote them: the state `mpi`'s sync runs in, so that only distbench's code differs
  custom     CustomStrategy.sync_gradients (pack + all_reduce per bucket + average)
  mpi        MPIStrategy.sync_gradients (one Allreduce of the buffer the gradients live in)
  ddp        DDP forward+backward with sync minus the same under no_sync() (calibration)
and prints `ratio_<strategy>=<strategy median / raw median>`. Target: <= 1.25 for mpi and custom.
`ratio_mpi` is against the raw call after backward; `ratio_mpi_idle` against the idle buffer.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F

from distbench.core.config import ModelConfig, RunConfig
from distbench.launch.local import free_port, mpiexec_path
from distbench.models.torch_models import build_model
from distbench.strategies import get_strategy
from distbench.system.cluster import detect
from distbench.system.timing import clock, median


def timed(fn: Callable[[], object], barrier: Callable[[], object],
          setup: Callable[[], object] | None = None) -> float:
    """One call, after its setup, started on every rank at once."""
    if setup is not None:
        setup()
    barrier()
    start = clock()
    fn()
    return clock() - start


def measure(model_name: str, strategies: dict, repeats: int) -> tuple[int, dict[str, float]]:
    """Median seconds per case for one model's gradients; every rank runs the same cases."""
    cfg = strategies["mpi"].cfg
    cfg.model = ModelConfig(model_name)
    comm, mpi = strategies["mpi"].coll.comm, strategies["mpi"].coll.MPI
    models = {}
    for name, s in strategies.items():
        net = build_model(cfg.model, (1, 28, 28), 10, [0.5], [0.25], seed=0)
        models[name] = (net, s.prepare(net))
    # What the training loop clears gradients through (mpi keeps them as views of its buffer).
    optimizers = {name: torch.optim.SGD(models[name][0].parameters(), lr=0.0)
                  for name in ("custom", "mpi")}
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))

    def backward(name: str) -> None:
        F.cross_entropy(models[name][1](x), y).backward()

    def ddp_unsynced() -> None:
        with models["ddp"][1].no_sync():
            backward("ddp")

    def fresh_grads() -> None:
        # Real steps sync new gradients; syncing the same buffer again would keep halving it
        # into denormal numbers, which are slow to compute with.
        for name in ("custom", "mpi"):
            strategies[name].zero_grad(optimizers[name])
            backward(name)

    numel = sum(p.numel() for p in models["mpi"][0].parameters())
    flat = torch.zeros(numel)
    cases = {
        "raw_gloo": lambda: dist.all_reduce(flat),
        "raw_mpi": lambda: comm.Allreduce(mpi.IN_PLACE, flat.numpy()),
        "custom": lambda: strategies["custom"].sync_gradients(models["custom"][1]),
        "mpi": lambda: strategies["mpi"].sync_gradients(models["mpi"][1]),
        "raw_mpi_grads": lambda: comm.Allreduce(
            mpi.IN_PLACE, strategies["mpi"].grads.buckets[0].buffer.numpy()),
        "ddp_synced": lambda: backward("ddp"),
        "ddp_unsynced": ddp_unsynced,
    }
    samples: dict[str, list[float]] = {k: [] for k in cases}
    setups = {"custom": fresh_grads, "mpi": fresh_grads, "raw_mpi_grads": fresh_grads}
    # One call of each case in turn, so drift hits every case alike, in an order shuffled every
    # round (the same on every rank: same seed), so that no case always follows the same other
    # (a call right after a gloo collective runs slower than one after an MPI call).
    order, rng = list(cases), random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for key in order:
            samples[key].append(timed(cases[key], comm.Barrier, setups.get(key)))
    m = {k: median(v) for k, v in samples.items()}
    m["ddp"] = max(0.0, m["ddp_synced"] - m["ddp_unsynced"])
    return numel * 4, m


def worker(repeats: int) -> None:
    env = detect()
    torch.set_num_threads(1)
    cfg = RunConfig(workers=env.world_size)
    strategies = {n: get_strategy(n)(cfg, env) for n in ("custom", "mpi", "ddp")}
    for s in strategies.values():
        s.setup()
    results = [(name, *measure(name, strategies, repeats)) for name in ("mlp-128", "cnn")]
    for s in strategies.values():
        s.teardown()
    if env.rank == 0:
        for model_name, nbytes, m in results:
            print(f"\n{model_name}: {nbytes / 1e3:.0f} KB of gradients, 2 ranks, medians")
            for key in ("raw_gloo", "custom", "ddp", "raw_mpi", "raw_mpi_grads", "mpi"):
                print(f"  {key:13s} {m[key] * 1e6:9.1f} us")
            print(f"  ratio_custom={m['custom'] / m['raw_gloo']:.3f}  (vs raw gloo all_reduce)")
            print(f"  ratio_ddp={m['ddp'] / m['raw_gloo']:.3f}  (calibrated sync vs raw gloo)")
            print(f"  ratio_mpi={m['mpi'] / m['raw_mpi_grads']:.3f}  (vs raw MPI Allreduce of the "
                  "gradient buffer after backward)")
            print(f"  ratio_mpi_idle={m['mpi'] / m['raw_mpi']:.3f}  (vs raw MPI Allreduce of an "
                  "idle buffer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.repeats)
        return
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "OMP_NUM_THREADS": "1"}
    cmd = [mpiexec_path(), "-n", "2", sys.executable, __file__, "--worker",
           "--repeats", str(args.repeats)]
    raise SystemExit(subprocess.call(cmd, env=env))


if __name__ == "__main__":
    main()
