"""The `--compile` trial step must issue no collective: a rank whose compiler fails would leave
its peers waiting inside one. `unsynced()` is what the trial runs under; for the strategies that
communicate from inside backward (DDP's reducer, `custom --overlap`'s hooks) it must hold them.

Command: python -m pytest tests/unit/training/test_unsynced_trial.py

One process, a real gloo group of one rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from distbench.core.config import RunConfig
from distbench.launch.local import free_port
from distbench.strategies.custom import CustomStrategy
from distbench.system.cluster import ClusterEnv


@pytest.fixture
def overlapping() -> Iterator[CustomStrategy]:
    cfg = RunConfig(strategy="custom", overlap=True, bucket_mb=0.0001)
    strategy = CustomStrategy(cfg, ClusterEnv(master_port=free_port()))
    strategy.setup()
    try:
        yield strategy
    finally:
        strategy.teardown()


def backward_counting_collectives(strategy: CustomStrategy, model: nn.Module,
                                  monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = strategy.coll.sum_in_place

    def counted(buffer: torch.Tensor, async_op: bool = False) -> Any:
        calls.append(buffer.numel())
        return real(buffer, async_op=async_op)

    monkeypatch.setattr(strategy.coll, "sum_in_place", counted)
    model(torch.ones(2, 4)).sum().backward()
    return calls


def test_overlap_hooks_stand_still_while_unsynced(overlapping: CustomStrategy,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    model = overlapping.prepare(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))
    with overlapping.unsynced(model):
        assert backward_counting_collectives(overlapping, model, monkeypatch) == []
    assert overlapping.pending == {}
    for p in model.parameters():
        p.grad = None
    # Afterwards the hooks run again, every bucket counted from full.
    assert len(backward_counting_collectives(overlapping, model, monkeypatch)) == len(
        overlapping.buckets.buckets) > 1
