"""`--scaling weak` end to end: each of N workers keeps `--batch-size`, so the global batch is
batch x N, and everything the record derives from it follows.

Command: python -m pytest tests/multiproc/test_weak_scaling.py
"""

from __future__ import annotations

import pytest

from distbench.report.analysis import analyse
from distbench.strategies import missing_framework

from helpers import TINY, RunCache, assert_same_weights

# 100 samples in global batches of 2 x 16 = 32: three full steps and one of 4, per epoch.
DATA = [*TINY, "--synthetic-samples", "100"]


@pytest.mark.slow
def test_weak_scaling_multiplies_the_batch_by_the_workers(trained_runs: RunCache) -> None:
    hint = missing_framework("ddp")
    if hint:
        pytest.skip(hint)
    record, weights = trained_runs(*DATA, "--batch-size", "16", "--scaling", "weak",
                                   "--strategy", "ddp", "--workers", "2")
    assert (record["scaling"], record["global_batch"]) == ("weak", 32)
    assert record["config"]["batch_size"] == 16
    assert record["sharding"]["train_samples"] == 100
    assert (record["sharding"]["remainder"], record["sharding"]["last_step_samples"]) == (4, 4)
    assert record["steps"] == 2 * 4  # two epochs of ceil(100 / 32) steps
    assert record["samples_per_s"] == pytest.approx(2 * 100 / record["train_s"])
    # The same global batches as one process at --batch-size 32: the same weights.
    _, single = trained_runs(*DATA, "--batch-size", "32", "--strategy", "single",
                             "--workers", "1")
    assert_same_weights(weights, single, "ddp x2, weak scaling, 16 per worker")
    # The report groups it under the per-worker batch the user chose.
    (setup,) = analyse([record]).setups
    assert (setup.setup.scaling, setup.setup.batch) == ("weak", 16)
    assert setup.fairness()["global batch per cell"] == {"ddp ×2": 32}
