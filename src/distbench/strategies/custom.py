"""`custom`: hand-written data parallelism, no DDP wrapper.

Command: distbench run --strategy custom --workers 2 [--overlap] [--bucket-mb 1]

Gradients are packed into buckets, scaled by 1/world on the way in, and each bucket is summed
with `torch.distributed.all_reduce`, which leaves the average. With `--overlap`, a bucket's
all_reduce starts asynchronously from a gradient hook as soon as its last gradient is ready,
while backward continues, and the step waits for all of them before the optimizer runs.
comm_s is the time spent in these calls. `--compression fp16|bf16` sums the buckets in that
dtype (`buckets.GradBuckets`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import nn

from distbench.strategies.buckets import WIRE_DTYPES, GradBuckets
from distbench.strategies.torch_dist import TorchDistStrategy


class CustomStrategy(TorchDistStrategy):
    name = "custom"

    @property
    def comm_method(self) -> str:  # type: ignore[override]
        mode = "async from backward hooks, wait before step" if self.cfg.overlap else "blocking"
        wire = "" if self.cfg.compression == "none" else f" in {self.cfg.compression}"
        return f"timed: bucketed all_reduce{wire} ({mode}), pack and average included"

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        self.buckets = GradBuckets(model, self.cfg.bucket_mb * 2**20, self._comm_device(),
                                   WIRE_DTYPES.get(self.cfg.compression))
        self.pending: dict[int, Any] = {}  # bucket -> the handle of its async all_reduce
        self.suspended = False
        if self.cfg.overlap:
            self._install_hooks()
        return model

    def _install_hooks(self) -> None:
        self.missing = [len(g) for g in self.buckets.params]
        for index, group in enumerate(self.buckets.params):
            for p in group:
                p.register_post_accumulate_grad_hook(lambda _p, i=index: self._grad_ready(i))

    def _grad_ready(self, index: int) -> None:
        if self.suspended:
            return
        self.missing[index] -= 1
        if self.missing[index] == 0:
            with self.timed_comm():
                self.pending[index] = self.coll.sum_in_place(
                    self.buckets.pack(index, self.world), async_op=True
                )

    def sync_gradients(self, model: nn.Module) -> None:
        with self.timed_comm():
            for index in range(len(self.buckets.buckets)):
                work = self.pending.pop(index, None)
                if work is None:  # blocking mode, or a bucket with unused parameters
                    self.coll.sum_in_place(self.buckets.pack(index, self.world))
                else:
                    work.wait()
                self.buckets.finish(index)
        if self.cfg.overlap:
            self.missing = [len(g) for g in self.buckets.params]

    @contextlib.contextmanager
    def unsynced(self, model: nn.Module) -> Iterator[None]:
        """Backward without the overlapped all_reduces (the hooks stand still)."""
        self.suspended = True
        try:
            yield
        finally:
            self.suspended = False
