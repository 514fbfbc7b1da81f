"""Disjoint, covering, deterministic shards.

Each epoch draws one global permutation of the training set from (seed, epoch). Rank r of W takes
every W-th index starting at r. Cut into per-worker batches of B/W, step k of every rank then
holds exactly the samples of step k of a single process with global batch B, which is what makes
synchronous strategies match the baseline weight for weight.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np

SHARDING_RULE = (
    "strided shards of one permutation per epoch; no sample is dropped or repeated: when the "
    "training set does not divide by the global batch, the last step of each epoch is smaller "
    "(n mod global batch samples, split by the same stride, so ranks differ by at most one), and "
    "the loss is normalised by the samples actually in that step"
)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The one global order of an epoch, identical in every process."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def shard_indices(n: int, seed: int, epoch: int, rank: int, world: int) -> np.ndarray:
    """This worker's sample indices for one epoch."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside world size {world}")
    return epoch_permutation(n, seed, epoch)[rank::world]


Indices = TypeVar("Indices")  # a numpy array, or the same indices as a tensor


def step_slices(shard: Indices, n: int, world: int, global_batch: int
                ) -> Iterator[tuple[Indices, int]]:
    """Cut this rank's epoch `shard` into (its indices of the step, samples in the whole global
    step), one per step. Slicing needs no copy, so a trainer converts the shard to its tensor
    type once per epoch, not once per step.

    Every rank yields the same number of steps, even when its last slice is empty, so collectives
    stay matched across ranks.
    """
    per_rank = global_batch // world
    for k in range(-(-n // global_batch)):
        yield (shard[k * per_rank : (k + 1) * per_rank],  # type: ignore[index]
               min(global_batch, n - k * global_batch))


def step_batches(
    n: int, seed: int, epoch: int, rank: int, world: int, global_batch: int
) -> Iterator[tuple[np.ndarray, int]]:
    """`step_slices` of this rank's shard of epoch `epoch`."""
    return step_slices(shard_indices(n, seed, epoch, rank, world), n, world, global_batch)


def describe_sharding(n_train: int, global_batch: int) -> dict[str, Any]:
    """The record's `sharding` field: the rule, and what happens to the remainder."""
    remainder = n_train % global_batch
    return {
        "rule": SHARDING_RULE,
        "train_samples": n_train,
        "last_step_samples": remainder or global_batch,
        "remainder": remainder,
    }
