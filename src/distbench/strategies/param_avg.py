"""`param-avg`: local SGD. Each worker trains on its own shard with its own optimizer, and the
parameters (optionally the optimizer state too) are averaged every `--sync-every` steps and at the
end of every epoch, so each evaluation sees the consensus model.

Command: distbench run --strategy param-avg --workers 2 [--sync-every 1] [--average-optimizer-state]

With K=1 and plain SGD this equals synchronous gradient averaging (the parity test shows it);
larger K trades accuracy for fewer collectives. comm_s is the time spent averaging.
"""

from __future__ import annotations

import torch
from torch import nn

from distbench.strategies.buckets import FlatBucket
from distbench.strategies.torch_dist import TorchDistStrategy


class ParamAvgStrategy(TorchDistStrategy):
    name = "param-avg"
    comm_method = "timed: all_reduce of the flattened parameters (and optimizer state if asked)"

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        self.params = FlatBucket([p.data for p in model.parameters()], self._comm_device())
        self.dirty = False
        return model

    def after_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        self.dirty = True
        if self.cfg.sync_every and (step + 1) % self.cfg.sync_every == 0:
            self._average(optimizer)

    def end_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.dirty:
            self._average(optimizer)

    @torch.no_grad()
    def _average(self, optimizer: torch.optim.Optimizer) -> None:
        with self.timed_comm():
            buckets = [self.params]
            if self.cfg.average_optimizer_state:
                state = [t for s in optimizer.state.values() for k, t in sorted(s.items())
                         if torch.is_tensor(t) and t.is_floating_point() and k != "step"]
                if state:
                    buckets.append(FlatBucket(state, self._comm_device()))
            for bucket in buckets:
                self._all_reduce_mean(bucket)
        self.dirty = False
