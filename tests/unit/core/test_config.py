"""The run configuration and the error contract every command relies on.

Command: python -m pytest tests/unit/core/test_config.py

The local launcher hands each worker its RunConfig as JSON, so a field that does not survive the
round trip would make workers run another configuration than the one recorded.
"""

from __future__ import annotations

import json

import pytest

from distbench.core.config import MAX_SEED, DataConfig, ModelConfig, RunConfig
from distbench.core.errors import UsageError, error_line, last_error, unknown_name


def test_a_config_survives_the_trip_to_a_worker() -> None:
    cfg = RunConfig(strategy="custom", workers=2, data=DataConfig(
        "synthetic", synthetic_samples=97, synthetic_shape=(3, 8, 8), synthetic_classes=4),
        model=ModelConfig("cnn", image_size=16), batch_size=30, scaling="weak", lr=0.0125,
        overlap=True, bucket_mb=0.5, sync_every=3, target_accuracy=0.5, tf_prefetch=0)
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.data.synthetic_shape == (3, 8, 8)  # a tuple again, not JSON's list


def test_unknown_keys_from_a_newer_version_are_ignored() -> None:
    raw = {**RunConfig(epochs=4).to_dict(), "compression": "fp16"}
    assert RunConfig.from_dict(raw).epochs == 4


@pytest.mark.parametrize("scaling,workers,batch,expected", [
    ("strong", 1, 64, 64), ("strong", 4, 64, 64), ("weak", 4, 16, 64), ("weak", 1, 16, 16)])
def test_global_batch(scaling: str, workers: int, batch: int, expected: int) -> None:
    cfg = RunConfig(scaling=scaling, workers=workers, batch_size=batch)
    assert cfg.global_batch == expected


@pytest.mark.parametrize("changes,flag", [
    ({"workers": 3, "batch_size": 64}, "--batch-size 64 is the global batch"),
    ({"scaling": "sideways"}, "--scaling"),
    ({"backend": "nccl"}, "--backend nccl needs --device cuda"),
    ({"sync_every": 0}, "--sync-every"),
    ({"target_accuracy": 1.5}, "--target-accuracy"),
    ({"seed": -1}, "--seed must be in [0, 4294967295], got -1"),
    ({"seed": 99999999999999999999}, "--seed must be in [0, 4294967295]"),
])
def test_invalid_settings_are_one_line_usage_errors(changes: dict, flag: str) -> None:
    with pytest.raises(UsageError) as exc:
        RunConfig(**changes).validate()
    assert flag in str(exc.value) and "\n" not in str(exc.value)


def test_weak_scaling_allows_any_batch_for_any_workers() -> None:
    RunConfig(workers=3, batch_size=64, scaling="weak").validate()


def test_every_rank_of_the_largest_seed_can_be_seeded() -> None:
    """Keras seeds NumPy's legacy generator with the seed, torch each rank with seed + rank."""
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    cfg = RunConfig(seed=MAX_SEED, workers=4)
    cfg.validate()
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed + cfg.workers - 1)


def test_error_lines_are_read_back_from_a_child_log() -> None:
    """The launcher finds a worker's reason in its output: the last error line, prefix removed."""
    log = ["starting", error_line("rank 1: first").rstrip(), "traceback noise",
           "  " + error_line("rank 1: data not found").rstrip()]
    assert last_error(log) == "rank 1: data not found"
    assert last_error(["no errors here"]) is None


def test_unknown_names_list_the_valid_ones_sorted() -> None:
    message = str(unknown_name("model", "resnet", ["mlp-25", "cnn"]))
    assert message == "unknown model 'resnet'; choose one of: cnn, mlp-25"
