"""The direct fused Adam update is `Adam.step`, bit for bit, and defers to it where they could
differ.

Command: python -m pytest tests/unit/training/test_fused_update.py
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distbench.training.fused_update import adam_update

OPTIONS = {
    "plain": {},
    "weight decay": {"weight_decay": 0.1},
    "decoupled weight decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "amsgrad, maximize": {"amsgrad": True, "maximize": True},
}


def model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))


def set_grads(net: nn.Module, step: int) -> None:
    gen = torch.Generator().manual_seed(step)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=gen)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_bit_identical_to_adam_step(options: dict) -> None:
    """Six steps, the learning rate changed after the third, a parameter without a gradient at
    the fifth: weights and every state tensor equal `Adam.step`'s exactly."""
    nets = model(), model()
    opts = [torch.optim.Adam(n.parameters(), lr=0.01, fused=True, **options) for n in nets]
    updates = [opts[0].step, adam_update(opts[1])]
    assert updates[1] != opts[1].step
    for step in range(6):
        for net, opt, update in zip(nets, opts, updates):
            set_grads(net, step)
            if step == 4:
                net[0].bias.grad = None
            if step == 3:
                opt.param_groups[0]["lr"] = 0.003
            update()
    for a, b in zip(*nets):
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)
    for pa, pb in zip(nets[0].parameters(), nets[1].parameters()):
        for key, value in opts[0].state[pa].items():
            assert torch.equal(value, opts[1].state[pb][key]), key


def test_adam_step_runs_only_where_needed() -> None:
    """The first step creates the state through `Adam.step`; later ones call the kernel; a step
    hook, or a tensor learning rate, sends the update back through `Adam.step`."""
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=0.01, fused=True)
    update = adam_update(opt)
    calls = []
    step = opt.step
    opt.step = lambda: calls.append(1) or step()  # counts which path ran
    for _ in range(3):
        set_grads(net, 0)
        update()
    assert len(calls) == 1
    seen = []
    handle = opt.register_step_pre_hook(lambda *args: seen.append(1))
    update()
    handle.remove()
    assert (len(calls), seen) == (2, [1])
    opt.param_groups[0]["lr"] = torch.tensor(0.01)
    update()
    assert len(calls) == 3


@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.Adam(ps, lr=0.01),
    lambda ps: torch.optim.Adam(ps, lr=0.01, foreach=True),
    lambda ps: torch.optim.SGD(ps, lr=0.01),
], ids=["default Adam", "foreach Adam", "SGD"])
def test_other_optimizers_keep_their_step(make) -> None:  # type: ignore[no-untyped-def]
    opt = make(model().parameters())
    assert adam_update(opt) == opt.step
