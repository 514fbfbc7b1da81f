"""`--compile` falls back to eager only for a compiler's error, and all ranks decide together.

Command: python -m pytest tests/unit/training/test_compile_fallback.py

In process, one worker, tiny synthetic data. `torch.compile` is replaced by a stand-in whose
compiled model fails at its first call, as the real one does when it cannot compile: a real
compilation takes minutes on a small machine and may well succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch._inductor.exc import InductorError

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.data import load_dataset
from distbench.strategies.single import SingleStrategy
from distbench.system.cluster import ClusterEnv
from distbench.training.torch_trainer import Trainer
from distbench.training.worker import run_worker


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    """The trainer sets torch's thread count for the run; give the test process its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny(out: Path, compile: bool = True) -> RunConfig:
    return RunConfig(
        data=DataConfig("synthetic", synthetic_samples=96, synthetic_shape=(1, 8, 8),
                        synthetic_classes=3),
        model=ModelConfig("mlp-25", compile=compile), epochs=1, batch_size=16,
        threads_per_worker=1, warmup_steps=2, calibration_steps=0, progress=False,
        save_model=True, out=str(out),
    )


def compiled_that_raises(error: Exception) -> Callable[..., Any]:
    """A `torch.compile` whose result raises `error` when called, as a lazy compiler does (after
    running the model once, so the trial has touched the training state)."""

    def compile(model: Any, **kwargs: Any) -> Callable[..., Any]:
        def compiled(*args: Any, **kw: Any) -> Any:
            model(*args, **kw).sum().backward()
            raise error

        return compiled

    return compile


def compiler_error() -> InductorError:
    return InductorError(RuntimeError("no working C++ compiler found"), None)


def test_compile_error_falls_back_to_eager_with_a_note(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    eager = run_worker(tiny(tmp_path / "eager", compile=False), ClusterEnv())
    monkeypatch.setattr(torch, "compile", compiled_that_raises(compiler_error()))
    record = run_worker(tiny(tmp_path / "fallback"), ClusterEnv())
    assert record is not None and eager is not None
    note = record["compile_note"]
    assert note.startswith("--compile is unavailable here (InductorError: ")
    assert "no working C++ compiler" in note and note.endswith("this run is eager")
    assert "rank" not in note  # one worker: no rank to name
    # The failed trial left no trace: the run is exactly the eager one.
    assert record["test_loss"] == eager["test_loss"]
    want, got = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("eager", "fallback"))
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)


def test_other_errors_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer gone (or any bug) during the trial is not a reason to run eager."""
    monkeypatch.setattr(torch, "compile", compiled_that_raises(
        RuntimeError("[gloo] Connection reset by peer")))
    with pytest.raises(RuntimeError, match="Connection reset by peer"):
        run_worker(tiny(tmp_path), ClusterEnv())
    assert not (tmp_path / "runs.jsonl").exists()


def trainer_whose_peer_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            peer: str | None) -> Trainer:
    """A trainer whose compile succeeds here, in a world where rank 1 reports `peer`."""
    cfg = tiny(tmp_path)
    strategy = SingleStrategy(cfg, ClusterEnv())
    monkeypatch.setattr(strategy, "all_gather", lambda obj: [obj, peer])
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: lambda x: model(x))
    trainer = Trainer(cfg, strategy, load_dataset(cfg.data))
    trainer.warm_up()
    return trainer


def test_a_peer_that_failed_to_compile_makes_every_rank_eager(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = trainer_whose_peer_says(tmp_path, monkeypatch, "InductorError: no C++ compiler")
    assert trainer.model is trainer.wrapped
    assert trainer.compile_note == ("--compile is unavailable here (rank 1: InductorError: no "
                                    "C++ compiler); this run is eager")


def test_every_rank_compiled_keeps_the_compiled_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = trainer_whose_peer_says(tmp_path, monkeypatch, None)
    assert trainer.model is not trainer.wrapped and trainer.compile_note is None
