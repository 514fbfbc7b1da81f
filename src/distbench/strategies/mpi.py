"""`mpi`: data parallelism over mpi4py, with no torch.distributed process group.

Command: distbench run --strategy mpi --workers 2    (distbench starts `mpiexec -n 2` itself)
Also:    mpiexec -n 2 distbench worker --strategy mpi --dataset mnist-5k

On CPU every parameter's `.grad` is a view into one flat buffer (as DDP's
`gradient_as_bucket_view`), so backward writes the gradients where `MPI.Allreduce` reads them:
one in-place allreduce of that buffer per step, with no pack and no unpack. The 1/world of the
average is folded into the loss (each rank's summed loss is divided by the step's global samples),
so the sum the allreduce leaves is already the mean. On a GPU, or with `--compression fp16`,
gradients are packed into a host buffer (of the wire dtype) instead, scaled by 1/world as they
are copied. Initial weights are broadcast with `MPI.Bcast`.
comm_s is the time of the Allreduce (and of the pack where there is one). bf16 is refused
(numpy, whose buffers MPI reads, has no bfloat16).
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
        how = ("the buffer the gradients live in, reduced in place"
               if getattr(self, "in_place", True) else "a packed copy, pack and average included")
        return f"timed: MPI.Allreduce{wire} of one flattened gradient buffer: {how}"

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
        self.in_place = self.cfg.compression == "none" and all(
            p.device.type == "cpu" for p in model.parameters())
        if self.in_place:
            self.grads.bind()
        return model

    def loss_scale(self, count: int) -> float:
        return 1.0 / count if self.in_place else super().loss_scale(count)

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        if self.in_place:
            self.grads.buckets[0].buffer.zero_()
        else:
            super().zero_grad(optimizer)

    def sync_gradients(self, model: nn.Module) -> None:
        with self.timed_comm():
            if self.in_place:
                self.coll.sum_in_place(self.grads.buckets[0].buffer.numpy())
                return
            self.coll.sum_in_place(self.grads.pack(0, self.world).numpy())
            self.grads.finish(0)

    @torch.no_grad()
    def average_running_stats(self, tensors: list[torch.Tensor]) -> None:
        with self.timed_comm():
            bucket = FlatBucket(tensors, torch.device("cpu"))
            self.coll.sum_in_place(bucket.pack(bucket.tensors, 1.0 / self.world).numpy())
            bucket.copy_back()
