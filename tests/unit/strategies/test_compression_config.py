"""--compression and --powersgd-rank: values checked before any process starts, and a strategy
that does not implement a mode refuses it in one line."""

from __future__ import annotations

import pytest

from distbench.api.settings import check_config
from distbench.core.config import RunConfig
from distbench.core.errors import UsageError
from distbench.strategies import STRATEGIES, Sharding, available_strategies, strategy_info


def test_unknown_compression_lists_the_choices():
    with pytest.raises(UsageError, match="none, fp16, bf16, powersgd"):
        RunConfig(compression="int8").validate()


def test_powersgd_rank_below_one():
    with pytest.raises(UsageError, match="--powersgd-rank must be >= 1"):
        RunConfig(powersgd_rank=0).validate()


@pytest.mark.parametrize("strategy,compression", [
    ("single", "fp16"), ("param-avg", "fp16"), ("zero", "bf16"), ("fsdp", "fp16"),
    ("custom", "powersgd"), ("mpi", "bf16"), ("tf-mirrored", "fp16"),
])
def test_unsupported_compression_is_one_line(strategy, compression):
    cfg = RunConfig(strategy=strategy, workers=1 if STRATEGIES[strategy].single_worker else 2,
                    compression=compression, batch_size=64)
    with pytest.raises(UsageError) as err:
        check_config(cfg, load_strategy=False)
    assert "\n" not in str(err.value) and f"--compression {compression}" in str(err.value)


@pytest.mark.parametrize("strategy,compression", [
    ("ddp", "fp16"), ("ddp", "bf16"), ("ddp", "powersgd"), ("custom", "bf16"), ("mpi", "fp16"),
])
def test_supported_compression_passes(strategy, compression):
    cfg = RunConfig(strategy=strategy, workers=2, compression=compression)
    assert check_config(cfg, load_strategy=False) is cfg


def test_exactness_from_the_registry():
    assert strategy_info("ddp").exact("none") and not strategy_info("ddp").exact("fp16")
    assert not strategy_info("param-avg").exact("none")
    assert strategy_info("zero").sharding is Sharding.OPTIMIZER
    assert strategy_info("fsdp").sharding is Sharding.FULL


def test_default_study_leaves_out_the_sharded_strategies():
    default, everything = available_strategies(default_only=True), available_strategies()
    assert "zero" not in default and "fsdp" not in default
    assert {"zero", "fsdp"} <= set(everything)
