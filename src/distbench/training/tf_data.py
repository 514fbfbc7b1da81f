"""The `tf.data` input pipeline of the TensorFlow rows, from the same in-memory arrays.

Command: python -c "from distbench.training.tf_data import demo; demo()"

One epoch is: order -> shard -> batch -> gather pixels -> prefetch.

- order: by default the shared permutation of `distbench.data.sharding`, drawn from (seed, epoch),
  so a TF row sees exactly the batches a PyTorch row sees. `--tf-shuffle-buffer N` switches to
  tf.data's own `shuffle(N)` seeded per epoch (the setting seed studies vary; N >= the training
  set is a full shuffle, small N a local one).
- shard: rank r of W processes takes every W-th sample of that order (the PyTorch rows' strided
  rule). In-process strategies are one process: the whole order; MirroredStrategy then splits
  each global batch between its replicas.
- batch: the process's batch (global batch / W), the last step smaller; a rank whose last slice
  is empty gets an empty batch, so every worker runs the same number of steps and the
  collectives stay matched.
- gather: images are indexed per batch from one constant tensor, not copied per epoch (a user
  dataset's memory-mapped uint8 cache is indexed in place and scaled per batch instead).
- prefetch: `--tf-prefetch N` batches (default `tf.data.AUTOTUNE`, whose buffer grows as the
  steps wait for it; 0 turns it off). tf.data's autotuning thread is off (`epochs_dataset` says
  why).

Auto-sharding is switched off: this module's shard is the only split of the data.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from distbench.data.sharding import epoch_permutation, shard_indices
from distbench.strategies.tf_base import import_tensorflow


def nhwc(images: np.ndarray) -> np.ndarray:
    """NCHW (the datasets' layout) to Keras' NHWC float32 in [0, 1]. uint8 pixels (a user
    dataset's cache) are scaled as the built-in sets are when loaded, so the values agree."""
    x = images.transpose(0, 2, 3, 1)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x, dtype=np.float32)


def shuffle_seed(seed: int, epoch: int) -> int:
    """tf.data's shuffle seed for one epoch: same in every process, different every epoch."""
    return int(np.random.default_rng([seed, epoch, 1]).integers(2**31 - 1))


class InputPipeline:
    """Per-epoch `tf.data.Dataset`s of (images NHWC, labels) for one process."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, seed: int, rank: int,
                 world: int, global_batch: int, shuffle_buffer: int | None = None,
                 prefetch: int | None = None) -> None:
        self.tf = import_tensorflow()
        self.n = len(labels)
        self.seed, self.rank, self.world = seed, rank, world
        self.global_batch = global_batch
        self.shuffle_buffer = shuffle_buffer
        self.prefetch = prefetch
        self.source = images
        with self.tf.device("/cpu:0"):
            # Float arrays become one constant, converted once; a memory-mapped uint8 cache is
            # read per batch instead, so the workers on a node share its one copy.
            self.images = None if images.dtype == np.uint8 else self.tf.constant(nhwc(images))
            self.labels = self.tf.constant(labels)

    @property
    def local_batch(self) -> int:
        return self.global_batch // self.world

    @property
    def steps(self) -> int:
        return -(-self.n // self.global_batch)

    def resharded(self, *, rank: int, world: int, global_batch: int) -> InputPipeline:
        """The same data, in the shared order, cut for another process layout (the
        calibration's one-replica reference): its constants are reused, not converted again."""
        other = copy.copy(self)
        other.rank, other.world, other.global_batch = rank, world, global_batch
        other.shuffle_buffer = None
        return other

    def counts(self) -> list[int]:
        """Samples in each global step: the divisor of the summed loss (same on every rank)."""
        return [min(self.global_batch, self.n - k * self.global_batch) for k in range(self.steps)]

    def index_batches(self, epoch: int) -> Any:
        """This rank's sample indices for one epoch, batched and padded to `steps` batches."""
        tf = self.tf
        if self.shuffle_buffer is None:
            order = shard_indices(self.n, self.seed, epoch, self.rank, self.world)
            ds = tf.data.Dataset.from_tensor_slices(order)
            mine = len(order)
        else:
            ds = (tf.data.Dataset.range(self.n)
                  .shuffle(self.shuffle_buffer, seed=shuffle_seed(self.seed, epoch),
                           reshuffle_each_iteration=False)
                  .shard(self.world, self.rank))
            mine = len(range(self.rank, self.n, self.world))
        ds = ds.batch(self.local_batch)
        missing = self.steps - -(-mine // self.local_batch)
        if missing:
            empty = tf.data.Dataset.from_tensors(tf.zeros([0], tf.int64)).repeat(missing)
            ds = ds.concatenate(empty)
        return ds

    def dataset(self, epoch: int) -> Any:
        """(images, labels) batches of this rank for one epoch, ready for a strategy."""
        return self.ready(self.index_batches(epoch))

    def epochs_dataset(self, epochs: int) -> Any:
        """Epochs 0..`epochs`-1 back to back, for one iterator that serves every timed epoch:
        each epoch is exactly `steps` batches, so the next one starts where the last ended,
        and prefetching runs on across the epochs' seams. Every epoch's order is built here,
        before any clock: one int64 per sample and epoch.

        Why one iterator: deleting a distributed tf.data iterator can wait for its autotuning
        thread's next wake-up, which comes 10 ms, 30 ms, 70 ms, ... 5.11 s, 10.23 s after the
        iterator's start (TensorFlow doubles the wait each time; the per-device datasets a
        strategy adds are tuned whatever this dataset's options say). An iterator per epoch,
        deleted as the epoch ended, stretched a 5.2 s `tf-multiworker` epoch to 10.28 s and a
        1.8 s `tf-custom` one to 2.6 s in about a third of the epochs. This one lives until
        the process ends (the worker leaves with `os._exit`).

        The epochs are joined pairwise, a tree of depth log2(epochs): each batch passes through
        every `concatenate` above its epoch, and a chain of 300 (one epoch after another) took
        287 us a batch against 68 us for the tree."""
        parts = [self.index_batches(epoch) for epoch in range(epochs)]
        while len(parts) > 1:
            pairs = [a.concatenate(b) for a, b in zip(parts[::2], parts[1::2], strict=False)]
            parts = pairs + parts[len(pairs) * 2:]
        return self.ready(parts[0])

    def ready(self, index_batches: Any) -> Any:
        """Batches of indices -> batches of (images, labels), prefetched; no auto-sharding, no
        autotuning."""
        tf = self.tf
        labels = self.labels
        ds = index_batches.map(lambda index: (self.gather_images(index), tf.gather(labels, index)))
        if self.prefetch != 0:
            ds = ds.prefetch(tf.data.AUTOTUNE if self.prefetch is None else self.prefetch)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        # No autotuning thread: deleting an iterator waits for that thread's next wake-up (see
        # `epochs_dataset`), which made `model.fit`'s own per-epoch iterator stretch a 1.0 s
        # tf-single epoch to 1.29 s; the prefetch buffer still grows on its own.
        options.autotune.enabled = False
        return ds.with_options(options)

    def gather_images(self, index: Any) -> Any:
        """One batch of NHWC float images, from the constant or from the shared cache."""
        tf = self.tf
        if self.images is not None:
            return tf.gather(self.images, index)
        source = self.source
        batch = tf.numpy_function(lambda i: nhwc(source[i]), [index], tf.float32, stateful=False)
        channels, height, width = source.shape[1:]
        return tf.ensure_shape(batch, (None, height, width, channels))

    def describe(self) -> dict[str, Any]:
        """The settings, for the run record."""
        return {
            "order": ("shared per-epoch permutation (distbench.data.sharding)"
                      if self.shuffle_buffer is None
                      else f"tf.data shuffle, buffer {self.shuffle_buffer}, seeded per epoch"),
            "shard": f"rank {self.rank} of {self.world}, strided",
            "batch_per_process": self.local_batch,
            "prefetch": "AUTOTUNE" if self.prefetch is None else self.prefetch,
            "autotune": False,
            "steps_per_epoch": self.steps,
        }


def demo() -> None:
    """Print the first batches' indices of two ranks, to see the shard rule at work."""
    for rank in range(2):
        pipe = InputPipeline(np.zeros((10, 1, 1, 1), np.float32), np.arange(10), seed=0,
                             rank=rank, world=2, global_batch=4)
        batches = [b.numpy().tolist() for b in pipe.index_batches(0)]
        print(f"rank {rank}: {batches} (permutation {epoch_permutation(10, 0, 0).tolist()})")
