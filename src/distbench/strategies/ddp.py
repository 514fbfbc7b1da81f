"""`ddp`: torch.nn.parallel.DistributedDataParallel (gloo on CPU, nccl on CUDA).

Command: distbench run --strategy ddp --workers 2 --dataset mnist-5k
Also:    torchrun --nproc-per-node 2 -m distbench worker --strategy ddp --dataset mnist-5k
         mpiexec -n 2 distbench worker --strategy ddp ...   (ranks from MPI, collectives from gloo)

DDP all-reduces gradient buckets from inside backward, overlapped with it. A communication hook
wraps the all-reduce (or the compression hook) of every bucket and notes when it is launched and
when its future completes; a step's communication is what backward could not hide: from the
launch of the last bucket (every gradient is computed by then) to the completion of the last
all-reduce. Calibration steps (forward+backward with and without `no_sync()`) still run, and
their estimate is kept in the record as `comm_s_calibrated`, a cross-check.

`--compression` installs one of DDP's own communication hooks: fp16/bf16 (each bucket cast, summed
and cast back) or PowerSGD (Vogels et al., 2019: each gradient matrix reduced as two rank-r
factors, with error feedback; vectors such as biases go uncompressed).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
from torch.nn.parallel import DistributedDataParallel

from distbench.core.errors import UsageError
from distbench.strategies import CommMeasure
from distbench.strategies.torch_dist import TorchDistStrategy
from distbench.system.timing import clock

# Buffers are broadcast once, at construction, but not before every forward: the other strategies
# pay no buffer broadcast per step, and running statistics are averaged at epoch end for all of
# them alike. torch 2.13 renamed the switch (`broadcast_buffers` is deprecated there).
NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


# PowerSGD all-reduces uncompressed for its first `start_powerSGD_iter` steps; 2 is the least it
# allows with error feedback, so compression starts with the second step.
POWERSGD_START = 2


def bf16_hook(process_group: Any, bucket: Any) -> Any:
    """DDP's bf16_compress_hook under another name: DDP refuses a hook of that name unless
    CUDA and NCCL 2.10+ are present, yet gloo sums bfloat16 as well (the same cast, sum and
    cast back on CPU)."""
    return default_hooks.bf16_compress_hook(process_group, bucket)


# DDP checks a hook's annotations, which this module's postponed (string) ones would fail.
bf16_hook.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    default_hooks.bf16_compress_hook)


class BucketTimer:
    """The state of `timed_hook`: the hook it wraps, and this step's launch and completion
    times (completions are noted on the backend's thread, read after backward has waited)."""

    def __init__(self, hook: Callable[[Any, Any], Any], state: Any) -> None:
        self.hook, self.state = hook, state
        self.launched: list[float] = []
        self.done: list[float] = []

    def exposed(self) -> float:
        """The step's communication that backward did not hide; clears the step's times."""
        exposed = max(self.done) - max(self.launched) if self.done else 0.0
        self.launched.clear()
        self.done.clear()
        return max(0.0, exposed)


def timed_hook(timer: BucketTimer, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """Launch the wrapped hook's all-reduce of `bucket`, noting when it starts and ends."""
    timer.launched.append(clock())
    future = timer.hook(timer.state, bucket)

    def finished(done: Any) -> Any:
        timer.done.append(clock())
        return done.value()

    return future.then(finished)


# DDP checks a hook's annotations, which this module's postponed (string) ones would fail.
timed_hook.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    timed_hook, eval_str=True)


def powersgd_limit(model: nn.Module) -> int | None:
    """The largest rank PowerSGD can use: the smallest dimension of the smallest gradient matrix
    (a tensor is compressed as its first dimension by the rest); None without matrices."""
    dims = [min(p.shape[0], p.numel() // p.shape[0]) for p in model.parameters() if p.dim() >= 2]
    return min(dims) if dims else None


class DDPStrategy(TorchDistStrategy):
    name = "ddp"

    @property
    def comm_method(self) -> str:  # type: ignore[override]
        hook = {"none": "all-reduce", "powersgd": f"PowerSGD rank {self.cfg.powersgd_rank}"}.get(
            self.cfg.compression, f"{self.cfg.compression} compression")
        return (f"a communication hook: around each bucket's {hook}, the part not overlapped "
                "with backward (calibration kept as comm_s_calibrated)")

    def prepare(self, model: nn.Module) -> nn.Module:
        # DDP broadcasts parameters and buffers from rank 0 in its constructor.
        ddp = DistributedDataParallel(
            model,
            device_ids=[self.env.local_rank] if self.cfg.device == "cuda" else None,
            bucket_cap_mb=self.cfg.bucket_mb,
            gradient_as_bucket_view=True,
            **NO_FORWARD_BUFFER_SYNC,
        )
        state, hook = self.comm_hook(ddp)
        if self.info.comm is CommMeasure.HOOK:
            self.timer = BucketTimer(hook, state)
            ddp.register_comm_hook(self.timer, timed_hook)
        elif hook is not default_hooks.allreduce_hook:
            ddp.register_comm_hook(state, hook)
        return ddp

    def sync_gradients(self, model: nn.Module) -> None:
        """DDP has reduced the gradients inside backward; this adds what it left exposed."""
        timer: BucketTimer | None = getattr(self, "timer", None)
        if timer is not None:
            self.comm_s += timer.exposed()

    def comm_hook(self, ddp: DistributedDataParallel) -> tuple[Any, Callable[[Any, Any], Any]]:
        """The (state, hook) that reduces each bucket: --compression's, or the plain
        all-reduce (which averages, as DDP's built-in one does)."""
        compression = self.cfg.compression
        if compression == "fp16":
            return None, default_hooks.fp16_compress_hook
        if compression == "bf16":
            return None, bf16_hook
        if compression == "powersgd":
            limit = powersgd_limit(ddp.module)
            if limit is not None and self.cfg.powersgd_rank > limit:
                raise UsageError(
                    f"--powersgd-rank {self.cfg.powersgd_rank} exceeds {limit}, the smallest "
                    f"dimension of {self.cfg.model.name}'s gradient matrices")
            self.powersgd = powerSGD_hook.PowerSGDState(
                process_group=None, matrix_approximation_rank=self.cfg.powersgd_rank,
                start_powerSGD_iter=POWERSGD_START)
            return self.powersgd, powerSGD_hook.powerSGD_hook
        return None, default_hooks.allreduce_hook

    def reset(self) -> None:
        """Forget warm-up, PowerSGD's step count and error feedback included."""
        super().reset()
        state: Any = getattr(self, "powersgd", None)
        if state is not None:
            state.iter = 0
            for memory in (state.error_dict, state.p_memory_dict, state.q_memory_dict):
                memory.clear()

    def unsynced(self, model: nn.Module) -> contextlib.AbstractContextManager[None]:
        return model.no_sync()  # type: ignore[operator]
