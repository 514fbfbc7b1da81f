"""What the torch.distributed strategies (ddp, custom, param-avg) share: the process group,
the initial-weight broadcast from rank 0, and small collectives for metrics.

When the rendezvous address is a loopback address (every local run), rank 0 hosts the c10d
store on that address only: `init_method="tcp://..."` would make the store listen on every
interface (TCPStore binds the wildcard address and has no host option), so rank 0 binds the
listening socket itself and hands it to the store (`master_listen_fd`). Any other address (a
multi-node run) keeps torch's own rendezvous, which must be reachable from the other hosts.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from distbench.core.errors import DistbenchError
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
        if dist.is_initialized():
            return
        store = loopback_store(self.env.master_addr, self.env.master_port, self.rank, self.world)
        if store is not None:
            dist.init_process_group(self.backend, store=store, rank=self.rank,
                                    world_size=self.world, timeout=COLLECTIVE_TIMEOUT)
        else:
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


def loopback_store(addr: str, port: int, rank: int, world: int) -> dist.TCPStore | None:
    """The c10d store for a rendezvous on a loopback address, listening on that address only;
    None for any other address, or when torchrun's agent already hosts the store."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    # torchrun (elastic) sets this when its agent hosts the store: every rank is then a client.
    if not ip.is_loopback or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        return None
    listen_fd = None
    if rank == 0:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        try:
            listen_fd = socket.create_server((addr, port), family=family).detach()
        except OSError as exc:
            raise DistbenchError(f"cannot listen on {addr}:{port} for the rendezvous "
                                 f"({exc.strerror}); choose another --master-port") from None
    # The store owns the descriptor from here on (and closes it).
    return dist.TCPStore(addr, port, world, rank == 0, COLLECTIVE_TIMEOUT, multi_tenant=True,
                         master_listen_fd=listen_fd)
