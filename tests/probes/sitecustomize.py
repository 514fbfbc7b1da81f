"""Probes for the processes a test starts (`distbench run`, its workers), loaded by Python itself
when this folder comes first on PYTHONPATH (`helpers.with_pythonpath(helpers.PROBES_DIR)`).
Each probe is off unless its variable is set, so a process without them runs unchanged.

DISTBENCH_PROBE_MODULES=DIR     at exit, write DIR/<pid>.json: {"argv": ..., "modules": [the
                                top-level names in sys.modules]}
DISTBENCH_PROBE_COMM_DELAY_S=S  in a PyTorch worker, every gradient collective first sleeps S
                                seconds: torch.distributed.all_reduce of float32 tensors (custom,
                                param-avg), DDP's bucket all-reduce (a comm hook registered on
                                every DistributedDataParallel), and MPI Allreduce (a COMM_WORLD
                                stand-in), so a test can check that comm_s grows by that much
DISTBENCH_PROBE_STATE=DIR       in a PyTorch worker, after training, write DIR/rank<r>.npz with
                                the model's parameters (`param.<name>`) and the optimizer's
                                floating-point state (`state.<index>.<key>`)

Command: DISTBENCH_PROBE_MODULES=/tmp/m PYTHONPATH=tests/probes:src distbench run ...
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _dump_modules(folder: str) -> None:
    names = sorted({name.split(".")[0] for name in list(sys.modules)})
    Path(folder, f"{os.getpid()}.json").write_text(json.dumps({"argv": sys.argv,
                                                               "modules": names}))


class _SlowComm:
    """MPI.COMM_WORLD, but Allreduce first sleeps (mpi4py's Comm type takes no new methods)."""

    def __init__(self, comm: Any, delay: float) -> None:
        self._comm, self._delay = comm, delay

    def Allreduce(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - mpi4py's name
        time.sleep(self._delay)
        return self._comm.Allreduce(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._comm, name)


def _delay_collectives(strategy: str, delay: float) -> None:
    from distbench.strategies import CommMeasure, Framework, strategy_info

    info = strategy_info(strategy)
    if info.framework is not Framework.PYTORCH:
        return
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    all_reduce = dist.all_reduce

    def slow_all_reduce(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if tensor.dtype == torch.float32:  # gradients and parameters, not float64 metrics
            time.sleep(delay)
        return all_reduce(tensor, *args, **kwargs)

    def slow_hook(state, bucket):  # noqa: ANN001 - DDP rejects a bucket annotated otherwise
        """DDP's default hook (average the bucket), after the delay; it calls the original
        all_reduce, so the bucket sleeps once."""
        time.sleep(delay)
        tensor = bucket.buffer().div_(dist.get_world_size())
        return all_reduce(tensor, async_op=True).get_future().then(lambda fut: fut.value()[0])

    def slowed(collective: Any) -> Any:
        """FSDP's gradient collective: a reduce-scatter (`reduce_scatter_single` in torch 2.13's
        FSDP2, `reduce_scatter_tensor` before), not an all-reduce."""
        def slow(*args: Any, **kwargs: Any) -> Any:
            time.sleep(delay)
            return collective(*args, **kwargs)

        return slow

    ddp_init = DistributedDataParallel.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        ddp_init(self, *args, **kwargs)
        self.register_comm_hook(None, slow_hook)

    dist.all_reduce = slow_all_reduce
    for name in ("reduce_scatter_tensor", "reduce_scatter_single"):
        if hasattr(dist, name):
            setattr(dist, name, slowed(getattr(dist, name)))
    # ddp's own timing hook reduces through dist.all_reduce, slowed above; a DDP without a
    # hook (zero's) reduces in C++, so it gets the slow one.
    if info.comm is not CommMeasure.HOOK:
        DistributedDataParallel.__init__ = init
    if "mpi4py" in info.needs:
        from mpi4py import MPI

        MPI.COMM_WORLD = _SlowComm(MPI.COMM_WORLD, delay)


def _save_state(trainer: Any, rank: int, folder: str) -> None:
    import numpy as np

    arrays = {f"param.{name}": p.detach().cpu().numpy()
              for name, p in trainer.net.named_parameters()}
    for index, state in trainer.optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if hasattr(value, "is_floating_point") and value.is_floating_point() and value.ndim:
                arrays[f"state.{index}.{key}"] = value.cpu().numpy()
    np.savez(Path(folder, f"rank{rank}.npz"), **arrays)


def _wrap_worker(delay: float | None, state_dir: str | None) -> None:
    """Wrap `run_worker` (what `distbench worker` calls) and `make_trainer` (its trainer)."""
    from distbench.training import worker

    run_worker, make_trainer = worker.run_worker, worker.make_trainer
    kept: dict[str, Any] = {}

    def keep_trainer(*args: Any) -> Any:
        kept["trainer"] = make_trainer(*args)
        return kept["trainer"]

    def probed_run_worker(cfg: Any, env: Any) -> Any:
        if delay:
            _delay_collectives(cfg.strategy, delay)
        record = run_worker(cfg, env)
        if state_dir and "trainer" in kept:
            _save_state(kept["trainer"], env.rank, state_dir)
        return record

    worker.make_trainer = keep_trainer
    worker.run_worker = probed_run_worker


def _install() -> None:
    modules_dir = os.environ.get("DISTBENCH_PROBE_MODULES")
    if modules_dir:
        atexit.register(_dump_modules, modules_dir)
        # A worker whose record is written leaves through os._exit, past atexit: dump first.
        leave = os._exit

        def dump_and_leave(code: int) -> None:
            _dump_modules(modules_dir)
            leave(code)

        os._exit = dump_and_leave
    delay = float(os.environ.get("DISTBENCH_PROBE_COMM_DELAY_S") or 0) or None
    state_dir = os.environ.get("DISTBENCH_PROBE_STATE")
    if delay or state_dir:
        _wrap_worker(delay, state_dir)


_install()
