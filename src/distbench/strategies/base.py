"""The small interface between a PyTorch strategy and the one training loop
(`distbench.training.torch_trainer`).

The base class is the null object: one process, collectives that return their input. A
distributed strategy overrides only what differs: how the process group starts, how the model is
wrapped, how gradients or parameters are synchronised, and how scalars cross ranks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from distbench.core.errors import DistbenchError
from distbench.strategies.role import WorkerRole
from distbench.system.timing import clock


class Strategy(WorkerRole):
    name: ClassVar[str] = "single"

    @property
    def backend(self) -> str | None:
        return None

    def device(self) -> torch.device:
        if self.cfg.device == "cuda":
            if torch.cuda.device_count() <= self.env.local_rank:
                raise DistbenchError(
                    f"--device cuda: local rank {self.env.local_rank} needs GPU "
                    f"{self.env.local_rank}, but torch sees {torch.cuda.device_count()} "
                    "CUDA device(s) here; use --device cpu"
                )
            return torch.device("cuda", self.env.local_rank)
        return torch.device("cpu")

    # ---- lifecycle
    def setup(self) -> None:
        """Join the process group, if any."""

    def teardown(self) -> None:
        """Leave the process group, if any."""

    def prepare(self, model: nn.Module) -> nn.Module:
        """Make initial weights identical on all ranks and wrap the model if the strategy does."""
        return model

    def build_optimizer(self, cls: type[torch.optim.Optimizer], params: Iterable[nn.Parameter],
                        options: dict[str, Any]) -> torch.optim.Optimizer:
        """The optimizer the loop steps: `cls(params, **options)`, or a sharded wrapper of it."""
        return cls(params, **options)

    def local_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """The optimizer whose state this rank holds (a sharded wrapper's own shard): what a
        snapshot copies and what the memory count reads."""
        return optimizer

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The whole model's weights and buffers; every rank calls it (gathering sharded
        parameters is a collective), rank 0's is the one saved."""
        return model.state_dict()

    # ---- training hooks, called by the loop
    def loss_scale(self, count: int) -> float:
        """What this rank's summed loss is multiplied by before backward, `count` being the
        step's global samples. world/count by default: the strategies' collectives average
        gradients over the ranks, which leaves the global mean."""
        return self.world / count

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        """Clear the gradients after a step; a strategy whose gradients are views of its own
        flat buffer keeps them (and zeroes the buffer) instead. What `zero_grad(set_to_none=True)`
        does, without its profiler record: that record was 13 of its 13.5 us per step for
        mlp-128, 2% of a batch-32 step."""
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None

    def sync_gradients(self, model: nn.Module) -> None:
        """After backward, before the optimizer step."""

    def after_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        """After the optimizer step; `step` counts timed steps from 0 across epochs."""

    def end_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """At the end of an epoch's training, inside the timed region."""

    def average_running_stats(self, tensors: list[torch.Tensor]) -> None:
        """At every epoch end: average BatchNorm running statistics across ranks, so that
        evaluation and the checkpoint see one model. Within an epoch each rank keeps its own, the
        same rule for every strategy (DDP included, which syncs buffers only at construction)."""

    def unsynced(self, model: nn.Module) -> contextlib.AbstractContextManager[None]:
        """A context in which forward and backward issue no collective: the calibration of the
        comm time, and the `--compile` trial, which must not leave a rank waiting in a collective
        that a peer, failing to compile, never joins."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def timed_comm(self) -> Iterator[None]:
        """Adds the enclosed time to `comm_s`: for strategies that issue their collectives."""
        start = clock()
        try:
            yield
        finally:
            self.comm_s += clock() - start


class CollectiveStrategy(Strategy):
    """A strategy with a process group (`self.coll`, set in `setup`): the small host collectives
    for metrics and timings go through it, whichever library it is."""

    coll: Any

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return self.coll.all_reduce_sum(values)

    def all_gather(self, obj: Any) -> list[Any]:
        return self.coll.all_gather(obj)

    def barrier(self) -> None:
        self.coll.barrier()
