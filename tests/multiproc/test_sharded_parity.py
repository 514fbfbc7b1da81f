"""The sharded strategies (zero, fsdp) end with the weights of `single`, as ddp does, at 2 and
3 workers, with SGD (momentum) and Adam; their records carry the memory fields."""

from __future__ import annotations

import pytest
import torch

from helpers import train_and_load

# 64 samples in global batches of 12: the last step's 4 samples split 2/2 or 2/1/1.
FLAGS = ["--dataset", "synthetic", "--synthetic-samples", "64", "--model", "mlp-25",
         "--batch-size", "12", "--epochs", "2", "--warmup-steps", "2", "--no-progress",
         "--calibration-steps", "2"]
OPTIMIZERS = {"adam": ["--optimizer", "adam"],
              "sgd": ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.05"]}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    return {name: train_and_load(tmp_path_factory.mktemp(f"single-{name}"), *FLAGS, *flags,
                                 "--strategy", "single")[1]
            for name, flags in OPTIMIZERS.items()}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("strategy", ["zero", "fsdp"])
def test_matches_single(tmp_path, baselines, strategy, workers, optimizer):
    record, weights = train_and_load(tmp_path, *FLAGS, *OPTIMIZERS[optimizer],
                                     "--strategy", strategy, "--workers", str(workers))
    assert record["workers"] == workers
    assert record["exact"] is True and record["compression"] == "none"
    assert len(record["model_state_bytes"]) == workers
    assert all(b > 0 for b in record["model_state_bytes"])
    assert record["cuda_peak_mb"] == [None] * workers
    expected = baselines[optimizer]
    assert weights.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(weights[name], expected[name], rtol=1e-4, atol=1e-5,
                                   msg=f"{name} differs from single")
