"""`mpi`: data parallelism over mpi4py, with no torch.distributed process group.

Command: distbench run --strategy mpi --workers 2    (distbench starts `mpiexec -n 2` itself)
Also:    mpiexec -n 2 distbench worker --strategy mpi --dataset mnist-5k

Every step packs all gradients into one reused buffer, scaled by 1/world as they are copied in
(one pass instead of copy-then-divide), and sums it with one in-place `MPI.Allreduce`, which
leaves the average. Initial weights are broadcast with `MPI.Bcast`.
comm_s is the time of pack (with scaling) + Allreduce. `--compression fp16` sums a float16
copy of the buffer; bf16 is refused (numpy, whose buffers MPI reads, has no bfloat16).
"""

from __future__ import annotations

import torch
from torch import nn

from distbench.strategies.base import CollectiveStrategy
from distbench.strategies.buckets import WIRE_DTYPES, FlatBucket, GradBuckets
from distbench.strategies.collectives import MPICollectives


class MPIStrategy(CollectiveStrategy):
    name = "mpi"

    @property
    def comm_method(self) -> str:  # type: ignore[override]
        wire = "" if self.cfg.compression == "none" else f" in {self.cfg.compression}"
        return (f"timed: MPI.Allreduce{wire} of one flattened gradient buffer, pack and "
                "average included")

    @property
    def backend(self) -> str:
        return "mpi"

    def setup(self) -> None:
        self.coll = MPICollectives(self.env)

    def prepare(self, model: nn.Module) -> nn.Module:
        for tensor in [*model.parameters(), *model.buffers()]:
            host = tensor.data.cpu()
            self.coll.broadcast(host.numpy())
            tensor.data.copy_(host)
        # One bucket holding every gradient, on the host where MPI reads it.
        self.grads = GradBuckets(model, float("inf"), torch.device("cpu"),
                                 WIRE_DTYPES.get(self.cfg.compression))
        return model

    def sync_gradients(self, model: nn.Module) -> None:
        with self.timed_comm():
            self.coll.sum_in_place(self.grads.pack(0, self.world).numpy())
            self.grads.finish(0)

    @torch.no_grad()
    def average_running_stats(self, tensors: list[torch.Tensor]) -> None:
        with self.timed_comm():
            bucket = FlatBucket(tensors, torch.device("cpu"))
            self.coll.sum_in_place(bucket.pack(bucket.tensors, 1.0 / self.world).numpy())
            bucket.copy_back()
