"""The direct fused Adam update is `Adam.step`, bit for bit, and defers to it where they could
differ.

Command: python -m pytest tests/unit/training/test_fused_update.py
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch
from torch import nn

from distbench.training.fused_update import adam_update

OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "betas, eps": {"betas": (0.8, 0.99), "eps": 1e-6},
    "weight decay": {"weight_decay": 0.1},
    "decoupled weight decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "amsgrad, maximize": {"amsgrad": True, "maximize": True},
}
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")])]


def model(device: str = "cpu") -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)).to(device)


def set_grads(net: nn.Module, step: int) -> None:
    gen = torch.Generator().manual_seed(step)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=gen).to(p.device)


def groups(net: nn.Sequential) -> list[dict[str, Any]]:
    """Two groups with their own hyperparameters, and a third whose layer never gets a
    gradient."""
    return [{"params": net[0].parameters(), "lr": 0.01},
            {"params": [net[2].weight], "lr": 0.002, "weight_decay": 0.05},
            {"params": [net[2].bias]}]


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the fused kernels called, by `Adam.step` and by the direct path alike."""
    calls: list[str] = []

    def counting(name: str) -> Callable[..., Any]:
        kernel = getattr(torch, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return kernel(*args, **kwargs)

        return counted

    for name in ("_fused_adam_", "_fused_adamw_"):
        monkeypatch.setattr(torch, name, counting(name))
    return calls


@pytest.fixture
def adam_steps(monkeypatch: pytest.MonkeyPatch) -> list[torch.optim.Optimizer]:
    """The optimizers whose `Adam.step` ran, once per call."""
    steps: list[torch.optim.Optimizer] = []
    step = torch.optim.Adam.step

    def counted(self: torch.optim.Optimizer, closure: Any = None) -> Any:
        steps.append(self)
        return step(self, closure)

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    return steps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_bit_identical_to_adam_step(options: dict[str, Any], device: str, kernel_calls: list[str],
                                    adam_steps: list[torch.optim.Optimizer]) -> None:
    """Seven steps over three parameter groups (one without gradients), the learning rate
    changed after the third, a parameter without a gradient at the fifth, and the state reloaded
    from a copy before the sixth: weights and every state tensor equal `Adam.step`'s exactly,
    and after the first step the direct path made its kernel calls itself."""
    nets = model(device), model(device)
    opts = [torch.optim.Adam(groups(n), lr=0.01, fused=True, **options) for n in nets]
    updates = [opts[0].step, adam_update(opts[1])]
    for step in range(7):
        for net, opt, update in zip(nets, opts, updates):
            set_grads(net, step)
            net[2].bias.grad = None
            if step == 4:
                net[0].bias.grad = None
            if step == 3:
                opt.param_groups[0]["lr"] = 0.003
            if step == 5:
                opt.load_state_dict(opt.state_dict())
            update()
    for pa, pb in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(pa, pb)
        for key, value in opts[0].state[pa].items():
            assert torch.equal(value, opts[1].state[pb][key]), key
    assert (adam_steps.count(opts[0]), adam_steps.count(opts[1])) == (7, 1)
    kernel = "_fused_adamw_" if options.get("decoupled_weight_decay") else "_fused_adam_"
    assert kernel_calls == [kernel] * 2 * 2 * 7  # two groups with gradients, both optimizers


def test_adam_step_runs_where_they_could_differ(adam_steps: list[torch.optim.Optimizer]) -> None:
    """The first step creates the state through `Adam.step`; a step hook, a `step` replaced on
    the instance, a tensor learning rate or a parameter's first gradient send the update back
    through `Adam.step` (or the instance's own)."""
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=0.01, fused=True)
    update = adam_update(opt)
    set_grads(net, 0)
    update()
    update()
    assert len(adam_steps) == 1
    handle = opt.register_step_pre_hook(lambda *args: None)
    update()
    handle.remove()
    assert len(adam_steps) == 2
    own: list[int] = []
    opt.step = lambda closure=None: own.append(1)  # type: ignore[method-assign]
    update()
    del opt.step
    assert own == [1] and len(adam_steps) == 2
    opt.param_groups[0]["lr"] = torch.tensor(0.01)
    update()
    assert len(adam_steps) == 3
    opt.param_groups[0]["lr"] = 0.01
    late = nn.Parameter(torch.zeros(2))
    opt.add_param_group({"params": [late]})
    late.grad = torch.ones(2)
    update()
    update()
    assert len(adam_steps) == 4


@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.Adam(ps, lr=0.01),
    lambda ps: torch.optim.Adam(ps, lr=0.01, foreach=True),
    lambda ps: torch.optim.AdamW(ps, lr=0.01, fused=True),
    lambda ps: torch.optim.SGD(ps, lr=0.01),
], ids=["default Adam", "foreach Adam", "fused AdamW", "SGD"])
def test_other_optimizers_keep_their_step(
        make: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]) -> None:
    """Only torch's own fused Adam is called directly; a subclass (AdamW) keeps its step."""
    opt = make(model().parameters())
    assert adam_update(opt) == opt.step
