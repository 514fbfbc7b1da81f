"""`--compile` compiles the whole PyTorch step: forward, backward and the optimizer's update; the
run trains what the eager one trains, and nothing is compiled again once the clock runs (the
warm-up is undone in place, so the compiled update keeps meeting the same state tensors).

Command: python -m pytest tests/unit/training/test_compiled_step.py

In process, one worker, tiny synthetic data: a real compilation (about 15 s here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.strategies.single import SingleStrategy
from distbench.system.cluster import ClusterEnv
from distbench.training.torch_trainer import ModuleSnapshot, Trainer
from distbench.training.worker import run_worker


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny(out: Path, compile: bool, epochs: int) -> RunConfig:
    """foreach Adam: a fused one is one kernel that torch.compile leaves alone."""
    return RunConfig(optimizer_impl="foreach",
        data=DataConfig("synthetic", synthetic_samples=96, synthetic_shape=(1, 8, 8),
                        synthetic_classes=3),
        model=ModelConfig("mlp-25", compile=compile), epochs=epochs, batch_size=16,
        threads_per_worker=1, warmup_steps=2, calibration_steps=0, progress=False,
        out=str(out))


def test_the_whole_step_compiles_trains_as_eager_and_never_recompiles(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eager = run_worker(tiny(tmp_path / "eager", False, 3), ClusterEnv())
    at_clock: list[int] = []
    before = Trainer.before_timed_epochs

    def note_frames(self: Trainer) -> None:
        at_clock.append(counters["frames"]["ok"])
        before(self)

    monkeypatch.setattr(Trainer, "before_timed_epochs", note_frames)
    counters.clear()
    compiled = run_worker(tiny(tmp_path / "compiled", True, 3), ClusterEnv())
    assert eager is not None and compiled is not None and eager["compiled_step"] is None
    assert compiled["compile_note"] is None
    assert compiled["compiled_step"] == "forward, backward, optimizer"
    assert at_clock[0] > 0, "nothing was compiled"
    assert counters["frames"]["ok"] == at_clock[0], "the timed epochs compiled again"
    for got, want in zip(compiled["history"], eager["history"]):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
    assert compiled["test_loss"] == pytest.approx(eager["test_loss"], rel=1e-5)


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.SGD])
def test_an_in_place_restore_keeps_the_state_tensors_and_undoes_the_steps(optimizer) -> None:
    """From a snapshot without state (before the first step) the state is zeroed: where Adam
    starts, and for SGD without dampening its first step exactly."""
    def run(restore_in_place: bool | None) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        opt = optimizer(net.parameters(), lr=0.1, **({"momentum": 0.9}
                                                      if optimizer is torch.optim.SGD else {}))
        x = torch.randn(8, 4)
        snapshot = ModuleSnapshot(net, opt, opt, SingleStrategy.__new__(SingleStrategy),
                                  in_place=lambda: bool(restore_in_place))
        snapshot.strategy.zero_grad = lambda o: o.zero_grad()  # type: ignore[method-assign]
        for _ in range(3):
            net(x).sum().backward()
            opt.step()
            opt.zero_grad()
        state = [t for s in opt.state.values() for t in s.values() if torch.is_tensor(t)]
        if restore_in_place is not None:
            snapshot.restore()
            kept = [t for s in opt.state.values() for t in s.values() if torch.is_tensor(t)]
            assert (not restore_in_place) or all(a is b for a, b in zip(state, kept))
            for _ in range(3):
                net(x).sum().backward()
                opt.step()
                opt.zero_grad()
        return [p.detach().clone() for p in net.parameters()]

    fresh = run(None)
    for restored in (run(True), run(False)):
        for a, b in zip(restored, fresh):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
