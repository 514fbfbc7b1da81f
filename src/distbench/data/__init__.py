"""Datasets and sharding: the same arrays and the same split rule for every strategy. Imports
only `system` and `core`, and numpy: never torch or TensorFlow."""

from distbench.data.datasets import DATASETS, DataError, Dataset
from distbench.data.loading import load_dataset, prepare_dataset
from distbench.data.sharding import SHARDING_RULE, shard_indices, step_batches, step_slices

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "SHARDING_RULE",
    "load_dataset",
    "prepare_dataset",
    "shard_indices",
    "step_batches",
    "step_slices",
]
