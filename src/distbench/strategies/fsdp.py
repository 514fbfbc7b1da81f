"""`fsdp`: fully sharded data parallelism, FSDP2 (`torch.distributed.fsdp.fully_shard`).

Command: distbench run --strategy fsdp --workers 2 --dataset mnist-5k

Every module that owns parameters becomes one FSDP group, and the root another (FSDP2's usual
per-layer wrapping). A rank stores 1/N of every parameter, gradient and optimizer moment (ZeRO-3:
16Ψ/N bytes with fp32 Adam, Ψ parameters): each group's parameters are all-gathered before its
forward and again before its backward, freed after each, and its gradients are reduce-scattered
(averaged) so each rank updates only its own shard. The update equals the unsharded one.

Collectives: gloo on CPU, nccl on CUDA. torch 2.13's gloo implements both collectives FSDP2
issues, `all_gather_into_tensor` and `reduce_scatter_tensor`, so no substitute is needed and the
CPU run does what the GPU run does.

comm_s comes from calibration: backward with and without gradient reduction
(`set_requires_gradient_sync(False)`, FSDP2's no_sync). The parameter all-gathers run in both
arms, so comm_s holds the gradient reduce-scatter only (the record's comm_method says so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard

from distbench.strategies.torch_dist import TorchDistStrategy


class FSDPStrategy(TorchDistStrategy):
    name = "fsdp"

    @property
    def comm_method(self) -> str:  # type: ignore[override]
        return (f"calibration: FSDP2 reduce_scatter_tensor of gradients ({self.backend}); the "
                "all_gather_into_tensor of parameters before forward and backward runs in "
                "both arms and is not included")

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)  # identical weights on every rank before sharding
        mesh = init_device_mesh(self.device().type, (self.world,))
        for module in list(model.modules())[1:]:
            if any(True for _ in module.parameters(recurse=False)):
                fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model

    @contextlib.contextmanager
    def unsynced(self, model: nn.Module) -> Iterator[None]:
        assert isinstance(model, FSDPModule)
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Every shard gathered (a collective on every rank), whole on rank 0's host."""
        return get_model_state_dict(
            model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
