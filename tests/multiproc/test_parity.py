"""Synchronous strategies end with the same weights as their framework's baseline (`single`,
`tf-single`) on the same global batches.

Command: python -m pytest tests/multiproc/test_parity.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distbench.strategies import STRATEGIES, framework_baselines, missing_framework

from helpers import SGD, TINY, assert_same_weights, train_and_load

# (strategy, its own flags, training flags): each must match its framework's baseline trained
# with the same training flags (TINY, then these).
CASES = [
    ("ddp", [], []),
    ("mpi", [], []),
    ("custom", [], []),
    ("custom", ["--overlap", "--bucket-mb", "0.01"], []),
    ("param-avg", ["--sync-every", "1"], SGD),
    # torch's per-parameter loop and its foreach kernels (auto picks fused for Adam), on the
    # flat-buffer MPI path too.
    ("ddp", [], ["--optimizer-impl", "default"]),
    ("mpi", [], ["--optimizer-impl", "default"]),
    ("mpi", [], ["--optimizer-impl", "foreach"]),
    # A remainder smaller than the workers: rank 1's last slice is empty.
    ("ddp", [], ["--synthetic-samples", "65"]),
    ("mpi", [], ["--synthetic-samples", "65"]),
    # One epoch of plain SGD, as the registry test trains them (the runs are shared).
    ("tf-mirrored", [], ["--epochs", "1", *SGD]),
    ("tf-custom", [], ["--epochs", "1", *SGD]),
]


def baseline_of(strategy: str) -> str:
    return framework_baselines()[STRATEGIES[strategy].framework]


@pytest.mark.parametrize("strategy,own_flags,train_flags", CASES,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_matches_its_baseline(trained_runs, strategy, own_flags, train_flags):
    hint = missing_framework(strategy)
    if hint:
        pytest.skip(hint)
    base = baseline_of(strategy)
    _, expected = trained_runs(*TINY, *train_flags, "--strategy", base, "--workers", "1")
    record, weights = trained_runs(*TINY, *train_flags, "--strategy", strategy, "--workers", "2",
                                   *own_flags)
    assert record["workers"] == 2
    processes = 2 if STRATEGIES[strategy].launcher.multi_process else 1
    assert len({w["pid"] for w in record["workers_info"]}) == processes
    assert_same_weights(weights, expected, " ".join([strategy, *own_flags]))


def test_uneven_shards_match_single(tmp_path):
    """3 workers, 100 samples, global batch 30: the last step has 10 samples split 4/3/3."""
    flags = [*TINY, "--synthetic-samples", "100", "--batch-size", "30"]
    _, expected = train_and_load(tmp_path / "single", *flags, "--strategy", "single")
    record, weights = train_and_load(tmp_path / "ddp", *flags, "--strategy", "ddp",
                                     "--workers", "3")
    assert record["sharding"]["remainder"] == 10
    assert "smaller" in record["sharding"]["rule"]
    assert_same_weights(weights, expected, "ddp x3")


def test_param_avg_with_long_interval_differs(trained_runs):
    """Local SGD with K > 1 is not synchronous: it must not silently equal the baseline."""
    _, expected = trained_runs(*TINY, *SGD, "--strategy", "single", "--workers", "1")
    _, weights = trained_runs(*TINY, *SGD, "--strategy", "param-avg", "--workers", "2",
                              "--sync-every", "4")
    assert any(not np.allclose(weights[k], expected[k], atol=1e-5) for k in expected)


@pytest.mark.parametrize("strategy", ["ddp", "mpi"])
def test_batchnorm_statistics_are_one_model_after_training(tmp_path, strategy):
    """Ranks see different shards, so their BatchNorm running statistics differ during an epoch;
    at its end they are averaged. The record's test loss (each rank scoring a strided part) must
    then be exactly that of the saved model scoring the whole test set."""
    import torch.nn.functional as F

    from distbench.core.config import DataConfig, ModelConfig
    from distbench.data import load_dataset
    from distbench.models.torch_models import build_model

    flags = ["--dataset", "synthetic", "--synthetic-samples", "96", "--synthetic-shape",
             "3x32x32", "--model", "mobilenet_v2", "--batch-size", "16", "--epochs", "1",
             "--warmup-steps", "1", "--calibration-steps", "2", "--no-progress"]
    record, weights = train_and_load(tmp_path, *flags, "--strategy", strategy, "--workers", "2")
    data = load_dataset(DataConfig("synthetic", synthetic_samples=96,
                                   synthetic_shape=(3, 32, 32)))
    net = build_model(ModelConfig("mobilenet_v2"), data.input_shape, data.num_classes,
                      data.mean, data.std, seed=0)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    net.eval()
    with torch.no_grad():
        loss = F.cross_entropy(net(torch.from_numpy(data.test_x)), torch.from_numpy(data.test_y))
    assert record["test_loss"] == pytest.approx(float(loss), rel=1e-4)
