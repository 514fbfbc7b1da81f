"""The training loop end to end: a real one-epoch run through the CLI, and the loop's own rules.

Command: python -m pytest tests/test_train.py

The CLI run is the user's path (subprocess, mnist-5k, which needs no download); the in-process
checks cover warm-up being undone, time-to-accuracy and the checkpoint without paying a process
start each.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.results.records import load_records
from distbench.system.cluster import ClusterEnv
from distbench.training.worker import run_worker

from helpers import assert_schema, run_cli


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One epoch of mlp-128 on mnist-5k, as a user would type it, with a saved model."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    cache = tmp_path_factory.mktemp("cache")
    proc = run_cli("run", "--dataset", "mnist-5k", "--epochs", "1", "--no-progress",
                   "--save-model", "--out", str(out),
                   env={"DISTBENCH_OFFLINE": "1", "XDG_CACHE_HOME": str(cache)})
    return out, proc


def test_smoke_run_succeeds(smoke_run: tuple[Path, Any]) -> None:
    out, proc = smoke_run
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "test accuracy" in proc.stdout and "samples/s" in proc.stdout
    assert str(out / "runs.jsonl") in proc.stdout.replace("\n", "")


def test_smoke_run_record(smoke_run: tuple[Path, Any]) -> None:
    out, _ = smoke_run
    (record,) = load_records(out)
    assert_schema(record)
    assert record["status"] == "ok" and record["error"] is None
    assert record["strategy"] == "single" and record["dataset"] == "mnist-5k"
    assert record["model"] == "mlp-128" and record["epochs"] == 1 and record["workers"] == 1
    assert record["test_accuracy"] > 0.75, "one epoch on 4,000 digits is far above 10% chance"
    assert record["train_s"] > 0 and record["samples_per_s"] > 0
    assert len(record["epoch_s"]) == 1 and len(record["history"]) == 1
    assert record["history"][0]["test_accuracy"] == record["test_accuracy"]
    assert [w["rank"] for w in record["workers_info"]] == [0]
    assert record["samples_per_s"] == pytest.approx(4000 / record["train_s"])


def test_smoke_run_is_readable_by_pandas(smoke_run: tuple[Path, Any]) -> None:
    pd = pytest.importorskip("pandas")
    out, _ = smoke_run
    frame = pd.read_json(out / "runs.jsonl", lines=True)
    assert len(frame) == 1 and frame.loc[0, "status"] == "ok"


def test_smoke_run_checkpoint(smoke_run: tuple[Path, Any]) -> None:
    out, _ = smoke_run
    meta = json.loads((out / "model.json").read_text())
    for key in ("model", "dataset", "classes", "normalisation", "input_shape"):
        assert key in meta, key
    assert meta["model"] == "mlp-128" and meta["dataset"] == "mnist-5k"
    assert meta["classes"] == [str(i) for i in range(10)]
    assert meta["input_shape"] == [1, 28, 28]
    assert set(meta["normalisation"]) >= {"mean", "std"}
    weights = load_file(str(out / "model.safetensors"))
    assert sorted(weights) == meta["tensors"]
    (record,) = load_records(out)
    assert meta["run_id"] == record["run_id"]
    assert meta["test_accuracy"] == record["test_accuracy"]


# --------------------------------------------------------------------------- in process


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
