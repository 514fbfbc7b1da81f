"""`zero`: DDP with ZeRO stage 1, `torch.distributed.optim.ZeroRedundancyOptimizer`.

Command: distbench run --strategy zero --workers 2 --dataset mnist-5k

Gradients are all-reduced by DDP exactly as in `ddp`; the optimizer state (Adam's two moments,
SGD's momentum) is split across the ranks, each rank updating only the parameters it owns and
then broadcasting them to the others. With fp32 Adam a rank holds 8Ψ + 8Ψ/N bytes of model
state instead of DDP's 16Ψ (Rajbhandari et al., SC'20, with Ψ parameters). The update equals the
unsharded optimizer's, so the run is exact.

comm_s comes from calibration like ddp's, so it holds the gradient all-reduce only: the
parameter broadcasts run inside the optimizer step, which calibration does not take, and the
record's comm_method says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.distributed.optim import ZeroRedundancyOptimizer

from distbench.strategies.ddp import DDPStrategy


class ZeroStrategy(DDPStrategy):
    name = "zero"
    comm_method = ("calibration: DDP's gradient all_reduce; ZeRO's broadcast of updated "
                   "parameters runs inside the optimizer step and is not included")

    def build_optimizer(self, cls: type[torch.optim.Optimizer], params: Iterable[nn.Parameter],
                        options: dict[str, Any]) -> torch.optim.Optimizer:
        return ZeroRedundancyOptimizer(params, optimizer_class=cls, **options)

    def local_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        # The shard this rank updates; the wrapper's own state_dict() would need a
        # consolidate_state_dict() gathering every shard onto one rank first.
        assert isinstance(optimizer, ZeroRedundancyOptimizer)
        return optimizer.optim
