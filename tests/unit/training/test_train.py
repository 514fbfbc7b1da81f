"""The PyTorch training loop's own rules, in process: warm-up undone, history and time to
accuracy, the checkpoint, learning. (The same loop through the CLI: tests/cli/test_run.py.)

Command: python -m pytest tests/unit/training/test_train.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.system.cluster import ClusterEnv
from distbench.training.worker import run_worker


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """run_worker sets torch's thread count for the run; give the test process its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny(out: Path, **overrides: Any) -> RunConfig:
    cfg = RunConfig(
        data=DataConfig("synthetic", synthetic_samples=96, synthetic_shape=(1, 8, 8),
                        synthetic_classes=3),
        model=ModelConfig("mlp-25"), epochs=2, batch_size=16, threads_per_worker=1,
        progress=False, out=str(out),
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def train(cfg: RunConfig) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    record = run_worker(cfg, ClusterEnv())
    assert record is not None
    return record, load_file(str(Path(cfg.out or ".") / "model.safetensors"))


@pytest.mark.usefixtures("restore_threads")
def test_warmup_steps_are_undone(tmp_path: Path) -> None:
    """Warm-up only warms caches: the trained weights are those of a run without it."""
    _, cold = train(tiny(tmp_path / "cold", warmup_steps=0, save_model=True))
    record, warm = train(tiny(tmp_path / "warm", warmup_steps=3, save_model=True))
    for name in cold:
        torch.testing.assert_close(warm[name], cold[name], rtol=0, atol=0, msg=name)
    assert record["steps"] == 2 * 6


@pytest.mark.usefixtures("restore_threads")
def test_history_and_time_to_target(tmp_path: Path) -> None:
    record, _ = train(tiny(tmp_path, epochs=3, target_accuracy=0.01, save_model=True))
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    times = [h["time_s"] for h in record["history"]]
    assert times == sorted(times) and times[-1] == pytest.approx(record["train_s"])
    assert record["time_to_target_s"] == times[0]
    assert record["sharding"]["remainder"] == 96 % 16
    assert os.path.exists(record["checkpoint"])


@pytest.mark.usefixtures("restore_threads")
def test_unreached_target_is_null(tmp_path: Path) -> None:
    record = run_worker(tiny(tmp_path, epochs=1, target_accuracy=1.0, lr=1e-9), ClusterEnv())
    assert record is not None and record["time_to_target_s"] is None
    assert record["optimizer"] == "adam"


@pytest.mark.usefixtures("restore_threads")
def test_sgd_learns_the_synthetic_task(tmp_path: Path) -> None:
    record = run_worker(tiny(tmp_path, epochs=4, optimizer="sgd", lr=0.05), ClusterEnv())
    assert record is not None and record["test_accuracy"] > 0.6
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"]
