"""Properties of the sharding rule that every fairness claim rests on.

Command: python -m pytest tests/unit/data/test_sharding.py

If shards overlapped or missed samples, a distributed run would train on different data than the
baseline; if a rank had fewer steps than another, its collectives would hang. Hypothesis searches
sizes, world sizes and batches, including the awkward ones (n < world, n not divisible by the
batch, n = 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distbench.data import SHARDING_RULE, shard_indices, step_batches
from distbench.data.sharding import epoch_permutation

from helpers import in_fresh_process

sizes = st.integers(min_value=0, max_value=600)
worlds = st.integers(min_value=1, max_value=8)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
epochs = st.integers(min_value=0, max_value=1000)

# No example database: a run never depends on examples saved by an earlier one.
FAST = settings(max_examples=150, deadline=None, database=None)


@FAST
@given(n=sizes, world=worlds, seed=seeds, epoch=epochs)
def test_shards_are_disjoint_and_cover(n: int, world: int, seed: int, epoch: int) -> None:
    shards = [shard_indices(n, seed, epoch, r, world) for r in range(world)]
    merged = np.concatenate(shards)
    assert len(merged) == n, "a sample was dropped or repeated"
    assert sorted(merged.tolist()) == list(range(n))
    lengths = [len(s) for s in shards]
    assert max(lengths) - min(lengths) <= 1


# (n, seed, epoch, world): small, awkward and large cases.
PROCESS_CASES = [(0, 0, 0, 1), (10, 0, 0, 3), (97, 12345, 7, 4), (600, 2**32 - 1, 999, 8)]


def test_every_process_draws_the_same_shards() -> None:
    """Each worker computes its shard on its own: another process (another hash seed, another
    global random state) must draw exactly the same indices, or ranks would overlap."""
    here = [[shard_indices(n, s, e, r, w).tolist() for r in range(w)]
            for n, s, e, w in PROCESS_CASES]
    there = in_fresh_process(
        "import json\nfrom distbench.data import shard_indices\n"
        f"cases = {PROCESS_CASES!r}\n"
        "print(json.dumps([[shard_indices(n, s, e, r, w).tolist() for r in range(w)]\n"
        "                  for n, s, e, w in cases]))")
    assert there == here


def test_the_order_is_numpys_permutation_of_seed_and_epoch() -> None:
    """The documented order, pinned: numpy's default_rng([seed, epoch]).permutation(n). Records
    of earlier runs were trained on this order; a change would make them incomparable."""
    assert epoch_permutation(10, 0, 0).tolist() == [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]
    assert epoch_permutation(10, 0, 1).tolist() == [9, 1, 3, 8, 7, 6, 0, 4, 2, 5]
    assert epoch_permutation(10, 1, 0).tolist() == [8, 4, 7, 0, 1, 2, 5, 9, 6, 3]
    assert [shard_indices(10, 0, 0, r, 3).tolist() for r in range(3)] == [
        [4, 7, 9, 1], [6, 3, 0], [2, 5, 8]]


@FAST
@given(n=st.integers(min_value=20, max_value=600), seed=seeds, epoch=epochs, world=worlds)
def test_order_changes_between_epochs(n: int, seed: int, epoch: int, world: int) -> None:
    """Each epoch reshuffles; with 20+ samples an identical order would be a 1-in-20! accident."""
    assert not np.array_equal(epoch_permutation(n, seed, epoch),
                              epoch_permutation(n, seed, epoch + 1))
    differs = [not np.array_equal(shard_indices(n, seed, epoch, r, world),
                                  shard_indices(n, seed, epoch + 1, r, world))
               for r in range(world)]
    assert any(differs)


@FAST
@given(n=st.integers(min_value=20, max_value=600), seed=seeds, epoch=epochs)
def test_order_depends_on_seed(n: int, seed: int, epoch: int) -> None:
    assert not np.array_equal(epoch_permutation(n, seed, epoch),
                              epoch_permutation(n, seed + 1, epoch))


@FAST
@given(n=sizes, world=worlds, per_rank=st.integers(min_value=1, max_value=64), seed=seeds,
       epoch=st.integers(min_value=0, max_value=50))
def test_step_batches_match_single_process(n: int, world: int, per_rank: int, seed: int,
                                           epoch: int) -> None:
    """Step k of N ranks together is exactly step k of one process with the same global batch."""
    batch = per_rank * world
    single = list(step_batches(n, seed, epoch, 0, 1, batch))
    ranks = [list(step_batches(n, seed, epoch, r, world, batch)) for r in range(world)]
    expected_steps = -(-n // batch)
    assert len(single) == expected_steps
    assert all(len(steps) == expected_steps for steps in ranks), "ranks disagree on step count"
    for k, (single_idx, single_count) in enumerate(single):
        parts = [ranks[r][k][0] for r in range(world)]
        counts = {ranks[r][k][1] for r in range(world)}
        assert counts == {single_count} == {min(batch, n - k * batch)}
        assert sum(len(p) for p in parts) == single_count
        assert sorted(np.concatenate(parts).tolist()) == sorted(single_idx.tolist())
        lengths = [len(p) for p in parts]
        assert max(lengths) - min(lengths) <= 1, f"step {k}: ranks got {lengths}"
        assert all(len(p) <= per_rank for p in parts)
    # Over the whole epoch every sample is visited once, and each rank visits only its shard.
    visited = np.concatenate([idx for idx, _ in single]) if single else np.array([], int)
    assert sorted(visited.tolist()) == list(range(n))
    for r in range(world):
        own = np.concatenate([idx for idx, _ in ranks[r]]) if ranks[r] else np.array([], int)
        np.testing.assert_array_equal(own, shard_indices(n, seed, epoch, r, world))


def test_uneven_example_from_the_rule() -> None:
    """100 samples, 3 ranks, global batch 30: three full steps, then 10 samples split 4/3/3."""
    steps = [list(step_batches(100, 0, 0, r, 3, 30)) for r in range(3)]
    assert [len(s) for s in steps] == [4, 4, 4]
    assert [len(steps[r][3][0]) for r in range(3)] == [4, 3, 3]
    assert {steps[r][3][1] for r in range(3)} == {10}
    assert "smaller" in SHARDING_RULE


def test_rank_must_be_inside_the_world() -> None:
    with pytest.raises(ValueError, match="outside"):
        shard_indices(10, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        shard_indices(10, 0, 0, -1, 2)
