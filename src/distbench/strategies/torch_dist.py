"""What the torch.distributed strategies (ddp, custom, param-avg) share: the process group,
the initial-weight broadcast from rank 0, and small collectives for metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from distbench.strategies.base import Strategy
from distbench.strategies.buckets import FlatBucket

# A collective that waits this long means a peer is gone; fail instead of hanging.
COLLECTIVE_TIMEOUT = timedelta(seconds=120)


class TorchDistStrategy(Strategy):

    @property
    def backend(self) -> str:
        return self.cfg.backend or ("nccl" if self.cfg.device == "cuda" else "gloo")

    def setup(self) -> None:
        if self.cfg.device == "cuda":
            torch.cuda.set_device(self.env.local_rank)
        if not dist.is_initialized():
            dist.init_process_group(
                self.backend,
                init_method=f"tcp://{self.env.master_addr}:{self.env.master_port}",
                rank=self.rank, world_size=self.world, timeout=COLLECTIVE_TIMEOUT,
            )

    def teardown(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def prepare(self, model: nn.Module) -> nn.Module:
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)
        return model

    @torch.no_grad()
    def average_running_stats(self, tensors: list[torch.Tensor]) -> None:
        with self.timed_comm():
            self._all_reduce_mean(FlatBucket(tensors, self._comm_device()))

    def _all_reduce_mean(self, bucket: FlatBucket) -> None:
        """Replace the tensors of `bucket` by their average over the ranks."""
        dist.all_reduce(bucket.pack(bucket.tensors, 1.0 / self.world))
        bucket.copy_back()

    def _comm_device(self) -> torch.device:
        return self.device() if self.backend == "nccl" else torch.device("cpu")

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.env.local_rank])
        else:
            dist.barrier()
