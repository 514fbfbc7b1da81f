"""What the torch.distributed strategies (ddp, custom, param-avg) share: the process group,
the initial-weight broadcast from rank 0, and small collectives for metrics."""

from __future__ import annotations

import torch
from torch import nn

from distbench.strategies.base import CollectiveStrategy
from distbench.strategies.buckets import FlatBucket
from distbench.strategies.collectives import TorchCollectives


class TorchDistStrategy(CollectiveStrategy):

    @property
    def backend(self) -> str:
        return self.cfg.backend or ("nccl" if self.cfg.device == "cuda" else "gloo")

    def setup(self) -> None:
        device = self._comm_device()
        if self.cfg.device == "cuda":
            torch.cuda.set_device(self.env.local_rank)
        self.coll = TorchCollectives(self.backend, self.env, device)
        self.coll.join()

    def teardown(self) -> None:
        self.coll.leave()

    def prepare(self, model: nn.Module) -> nn.Module:
        for tensor in [*model.parameters(), *model.buffers()]:
            self.coll.broadcast(tensor.data)
        return model

    @torch.no_grad()
    def average_running_stats(self, tensors: list[torch.Tensor]) -> None:
        with self.timed_comm():
            self._all_reduce_mean(FlatBucket(tensors, self._comm_device()))

    def _all_reduce_mean(self, bucket: FlatBucket) -> None:
        """Replace the tensors of `bucket` by their average over the ranks."""
        self.coll.sum_in_place(bucket.pack(bucket.tensors, 1.0 / self.world))
        bucket.copy_back()

    def _comm_device(self) -> torch.device:
        return self.device() if self.backend == "nccl" else torch.device("cpu")
