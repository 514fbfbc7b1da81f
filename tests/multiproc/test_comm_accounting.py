"""`comm_s` measures communication: a gradient collective slowed on purpose by a known delay per
step raises the recorded communication time per step by that delay, whichever way the strategy
measures it (timing its own collectives, or calibration steps with and without sync).

Command: python -m pytest tests/multiproc/test_comm_accounting.py

The workers are the real ones, started by `distbench run`; tests/probes/sitecustomize.py slows
their collectives (DISTBENCH_PROBE_COMM_DELAY_S) without any change to distbench.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distbench.results.records import load_records
from distbench.strategies import (
    STRATEGIES,
    CommMeasure,
    Framework,
    Sharding,
    StrategyInfo,
    missing_framework,
)

from helpers import PROBES_DIR, run_cli, with_pythonpath

# Large enough to dominate the noise of a loaded 2-core machine (a gloo all-reduce of mlp-25's
# 80 KB of gradients takes about a millisecond there), small enough to keep the runs short.
DELAY_S = 0.025
MLP_25_LAYERS = 3  # 784 -> 25 -> 15 -> 10
# 256 samples in global batches of 16: 16 steps, each with one gradient collective.
RUN = ["--dataset", "synthetic", "--synthetic-samples", "256", "--model", "mlp-25",
       "--batch-size", "16", "--epochs", "1", "--warmup-steps", "2", "--calibration-steps", "10",
       "--no-progress"]


def measured_per_step(info: StrategyInfo) -> bool:
    """PyTorch strategies of several processes that exchange gradients at every step and
    measure it: the ones whose comm_s must follow a slower collective step for step."""
    return (info.framework is Framework.PYTORCH and info.launcher.multi_process
            and info.per_step_allreduce
            and info.comm in (CommMeasure.TIMED, CommMeasure.CALIBRATION,
                                 CommMeasure.HOOK))


CASES = [name for name, info in STRATEGIES.items() if measured_per_step(info)]


def comm_per_step(out: Path, strategy: str, delay: float) -> float:
    env = with_pythonpath(PROBES_DIR)
    env["DISTBENCH_PROBE_COMM_DELAY_S"] = str(delay)
    proc = run_cli("run", "--strategy", strategy, "--workers", "2", *RUN, "--out", str(out),
                   env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = load_records(out)
    assert record["steps"] == 16 and record["comm_s"] is not None, record
    return record["comm_s"] / record["steps"]


def test_the_cases_come_from_the_registry() -> None:
    """The selection is not empty and follows the registry's facts, never a list of names."""
    assert CASES, "no strategy measures a per-step collective"
    for name in CASES:
        assert STRATEGIES[name].per_step_allreduce and not STRATEGIES[name].single_worker


@pytest.mark.slow
@pytest.mark.parametrize("strategy", CASES)
def test_a_slower_collective_raises_comm_s_by_the_delay(tmp_path: Path, strategy: str) -> None:
    hint = missing_framework(strategy)
    if hint:
        pytest.skip(hint)
    plain = comm_per_step(tmp_path / "plain", strategy, 0.0)
    slowed = comm_per_step(tmp_path / "slowed", strategy, DELAY_S)
    added = slowed - plain
    expected = DELAY_S * gradient_collectives_per_step(STRATEGIES[strategy])
    assert 0.5 * expected <= added <= 1.5 * expected, (
        f"{strategy}: a {DELAY_S * 1e3:.0f} ms slower collective changed comm per step from "
        f"{plain * 1e3:.2f} ms to {slowed * 1e3:.2f} ms, expected +{expected * 1e3:.0f} ms")


def gradient_collectives_per_step(info: StrategyInfo) -> int:
    """One bucket of mlp-25's 80 KB of gradients per step, except under full sharding: FSDP2
    reduce-scatters each of the model's three Linear layers (its shard groups) on its own."""
    return MLP_25_LAYERS if info.sharding is Sharding.FULL else 1
