"""The collectives every multi-process path uses, written once: torch.distributed and mpi4py.

Used by the PyTorch strategies (`torch_dist.py`, `mpi.py`) and by `distbench bench-comm`'s
workers, so the micro-benchmark times exactly the calls training makes: an in-place summing
all-reduce of a flat buffer, a broadcast from rank 0, and, for metrics and timings, sums and
gathers of small host values.

Each framework is imported when its class is instantiated, not with this module: an mpi
bench-comm worker never loads torch.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from distbench.core.errors import DistbenchError
from distbench.system.cluster import ClusterEnv

if TYPE_CHECKING:
    import torch

# A collective that waits this long means a peer is gone; fail instead of hanging.
COLLECTIVE_TIMEOUT = timedelta(seconds=120)


class TorchCollectives:
    """One torch.distributed process group; buffers live on `device` (the GPU for nccl)."""

    def __init__(self, backend: str, env: ClusterEnv, device: torch.device) -> None:
        import torch
        import torch.distributed as dist

        self.torch, self.dist = torch, dist
        self.backend, self.env, self.device = backend, env, device
        self.rank, self.world = env.rank, env.world_size

    def join(self) -> None:
        """Start the process group: the store on MASTER_ADDR:MASTER_PORT (loopback-only for a
        local run, see the module docstring)."""
        if self.device.type == "cuda":
            self.torch.cuda.set_device(self.device)
        if self.dist.is_initialized():
            return
        store = self.loopback_store()
        if store is not None:
            self.dist.init_process_group(self.backend, store=store, rank=self.rank,
                                         world_size=self.world, timeout=COLLECTIVE_TIMEOUT)
            return
        self.dist.init_process_group(
            self.backend, init_method=f"tcp://{self.env.master_addr}:{self.env.master_port}",
            rank=self.rank, world_size=self.world, timeout=COLLECTIVE_TIMEOUT)

    def loopback_store(self) -> Any:
        """The c10d store for a rendezvous on a loopback address, listening on that address
        only; None for any other address, or when torchrun's agent already hosts the store."""
        addr, port = self.env.master_addr, self.env.master_port
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return None
        # torchrun (elastic) sets this when its agent hosts the store: every rank is a client.
        if not ip.is_loopback or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            return None
        listen_fd = None
        if self.rank == 0:
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            try:
                listen_fd = socket.create_server((addr, port), family=family).detach()
            except OSError as exc:
                raise DistbenchError(f"cannot listen on {addr}:{port} for the rendezvous "
                                     f"({exc.strerror}); choose another --master-port") from None
        # The store owns the descriptor from here on (and closes it).
        return self.dist.TCPStore(addr, port, self.world, self.rank == 0, COLLECTIVE_TIMEOUT,
                                  multi_tenant=True, master_listen_fd=listen_fd)

    def leave(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()

    def zeros(self, numel: int, dtype: str = "float32") -> torch.Tensor:
        """A buffer of zeros (`dtype` by torch's name) where this backend reads it."""
        return self.torch.zeros(numel, dtype=getattr(self.torch, dtype), device=self.device)

    def sum_in_place(self, buffer: torch.Tensor, async_op: bool = False) -> Any:
        """Sum `buffer` over the ranks, in place; with `async_op`, the handle to wait on."""
        return self.dist.all_reduce(buffer, async_op=async_op)

    def broadcast(self, tensor: torch.Tensor, root: int = 0) -> None:
        self.dist.broadcast(tensor, src=root)

    def synchronize(self) -> None:
        """Wait until the device has finished the collectives it was given (nccl is async)."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        t = self.torch.tensor(values, dtype=self.torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return t.tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's picklable `obj`, in rank order (small objects only)."""
        out: list[Any] = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.device.type == "cuda":
            self.dist.barrier(device_ids=[self.device.index])
        else:
            self.dist.barrier()


class MPICollectives:
    """MPI.COMM_WORLD through mpi4py, on numpy buffers (the host memory MPI reads)."""

    def __init__(self, env: ClusterEnv | None = None) -> None:
        """`env`, when given, must agree with MPI about this rank: ranks that disagree were not
        started by mpiexec and would pair the wrong peers."""
        from mpi4py import MPI

        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.world = self.comm.Get_rank(), self.comm.Get_size()
        if env is not None and (self.world, self.rank) != (env.world_size, env.rank):
            raise DistbenchError(
                f"MPI says rank {self.rank} of {self.world} but the environment says {env.rank} "
                f"of {env.world_size}; start mpi workers with mpiexec"
            )

    def join(self) -> None:
        """MPI is initialised by importing mpi4py; nothing more to start."""

    def leave(self) -> None:
        """mpi4py finalises MPI at exit."""

    def zeros(self, numel: int, dtype: str = "float32") -> np.ndarray:
        """numpy has no bfloat16: callers refuse it for MPI first (`bench_comm.unavailable`)."""
        return np.zeros(numel, dtype=dtype)

    def sum_in_place(self, buffer: np.ndarray) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> None:
        self.comm.Bcast(buffer, root=root)

    def synchronize(self) -> None:
        """MPI's blocking calls have finished when they return."""

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return self.comm.allreduce(np.asarray(values, dtype=np.float64), op=self.MPI.SUM).tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def barrier(self) -> None:
        self.comm.Barrier()
