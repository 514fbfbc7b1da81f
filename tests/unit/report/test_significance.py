"""Intervals and tests that can tell a real 10% change from noise, and do not cry wolf.

Command: python -m pytest tests/unit/report/test_significance.py

Synthetic record sets are drawn from known distributions (log-normal run times with a 5% spread,
the spread measured on quiet 2-core VMs here): a real 10% shift with 10 runs per side must be
flagged in at least 90% of 200 trials, by `distbench diff` and by the report's speedup interval;
identical distributions may be flagged in at most 7% of 200 trials.
"""

from __future__ import annotations

import numpy as np
import pytest

from distbench.report.analysis import analyse
from distbench.report.diff import diff_records
from distbench.report.stats import median_interval, ratio_interval

TRIALS, RUNS, SPREAD = 200, 10, 0.05


def record(strategy: str, train_s: float, **extra: object) -> dict:
    return {"status": "ok", "strategy": strategy, "framework": "pytorch", "workers": 1,
            "train_s": train_s, "dataset": "synthetic", "model": "mlp-25", "epochs": 1,
            "global_batch": 32, "threads_per_worker": 2, "optimizer": "adam", "lr": 0.001,
            "scaling": "strong", "env": {"host": "box", "cores": 2, "torch": "2.13.0"},
            **extra}


def draws(rng: np.random.Generator, shift: float) -> np.ndarray:
    return 10.0 * (1 + shift) * np.exp(rng.normal(0.0, SPREAD, RUNS))


def diff_flags(rng: np.random.Generator, shift: float) -> bool:
    old = [record("ddp", t) for t in draws(rng, 0.0)]
    new = [record("ddp", t) for t in draws(rng, shift)]
    (row,) = diff_records(old, new).rows
    return row.significant


def report_flags(rng: np.random.Generator, shift: float) -> bool:
    """The report calls a speedup significant when its interval excludes 1.0."""
    records = []
    for base, cell in zip(draws(rng, 0.0), draws(rng, shift)):  # interleaved rounds
        records += [record("single", base), record("ddp", cell)]
    (setup,) = analyse(records).setups
    ddp = next(c for c in setup.cells if c.strategy == "ddp")
    return ddp.speedup_ci is not None and not ddp.speedup_ci.contains(1.0)


@pytest.mark.parametrize("flags", [diff_flags, report_flags], ids=["diff", "report"])
def test_power_on_a_real_ten_percent_shift(flags) -> None:
    rng = np.random.default_rng(7)
    rate = np.mean([flags(rng, 0.10) for _ in range(TRIALS)])
    assert rate >= 0.90, f"flagged a real 10% shift in only {rate:.0%} of {TRIALS} trials"


@pytest.mark.parametrize("flags", [diff_flags, report_flags], ids=["diff", "report"])
def test_false_positives_on_identical_distributions(flags) -> None:
    rng = np.random.default_rng(2026)
    rate = np.mean([flags(rng, 0.0) for _ in range(TRIALS)])
    assert rate <= 0.07, f"flagged identical distributions in {rate:.0%} of {TRIALS} trials"


def test_intervals_need_two_runs_and_bracket_the_median() -> None:
    assert median_interval([5.0]) is None and ratio_interval([1.0], [1.0, 2.0]) is None
    ci = median_interval([9.0, 10.0, 11.0, 30.0])
    assert ci is not None and 9.0 <= ci.low <= 10.5 <= ci.high <= 30.0


def test_diff_lists_unmatched_cells_and_refuses_unfair_pairs() -> None:
    old = [record("ddp", 10.0), record("ddp", 10.5), record("mpi", 9.0)]
    new = [record("ddp", 10.1, global_batch=64), record("custom", 8.0)]
    d = diff_records(old, new)
    assert d.rows == []
    assert d.only_old == ["mpi ×1 · synthetic/mlp-25"]
    assert d.only_new == ["custom ×1 · synthetic/mlp-25"]
    assert d.refused == ["ddp ×1 · synthetic/mlp-25: global batch differs (32 → 64)"]


def test_diff_refuses_a_version_change_unless_asked() -> None:
    old = [record("ddp", t) for t in (10.0, 10.2, 9.9)]
    new = [record("ddp", t, env={"host": "box", "cores": 2, "torch": "2.14.1"})
           for t in (8.0, 8.1, 7.9)]
    assert "versions differ" in diff_records(old, new).refused[0]
    (row,) = diff_records(old, new, across_versions=True).rows
    assert row.change == pytest.approx(8.0 / 10.0 - 1) and row.notes
