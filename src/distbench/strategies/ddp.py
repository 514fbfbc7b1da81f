"""`ddp`: torch.nn.parallel.DistributedDataParallel (gloo on CPU, nccl on CUDA).

Command: distbench run --strategy ddp --workers 2 --dataset mnist-5k
Also:    torchrun --nproc-per-node 2 -m distbench worker --strategy ddp --dataset mnist-5k
         mpiexec -n 2 distbench worker --strategy ddp ...   (ranks from MPI, collectives from gloo)

DDP all-reduces gradient buckets from inside backward, where they cannot be timed directly, so the
communication share comes from calibration steps: forward+backward with and without `no_sync()`.
"""

from __future__ import annotations

import contextlib
import inspect

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from distbench.strategies.torch_dist import TorchDistStrategy

# Buffers are broadcast once, at construction, but not before every forward: the other strategies
# pay no buffer broadcast per step, and running statistics are averaged at epoch end for all of
# them alike. torch 2.13 renamed the switch (`broadcast_buffers` is deprecated there).
NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


class DDPStrategy(TorchDistStrategy):
    name = "ddp"
    comm_method = "calibration"

    def prepare(self, model: nn.Module) -> nn.Module:
        # DDP broadcasts parameters and buffers from rank 0 in its constructor.
        return DistributedDataParallel(
            model,
            device_ids=[self.env.local_rank] if self.cfg.device == "cuda" else None,
            bucket_cap_mb=self.cfg.bucket_mb,
            gradient_as_bucket_view=True,
            **NO_FORWARD_BUFFER_SYNC,
        )

    def unsynced(self, model: nn.Module) -> contextlib.AbstractContextManager[None]:
        return model.no_sync()  # type: ignore[operator]
