"""A tf-multiworker worker that keeps its final weights, for tests/multiproc/test_tf_strategies.py.

Command: TF_CONFIG=... RANK=0 WORLD_SIZE=2 python tests/multiproc/tf_probe.py OUT_DIR

Each worker runs `distbench.training.worker.run_worker` as `distbench worker` does (rank 0
writes the record to OUT_DIR); `make_trainer` is only wrapped to keep a handle on the trainer, so
each worker can save its trainable weights to OUT_DIR/rank<r>.npz. Rank 0 then also trains, from the
same initial weights and without any distribution, the two references the test compares against:
`one_shard.npz`, its own shard alone (what it would learn without exchanging gradients), and
`full_batch.npz`, one process on the whole global batch (what synchronous data parallelism must
reproduce). 97 samples in batches of 16 leave one sample for the last step, so rank 1's last
batch is empty: the padding that keeps the collectives matched is exercised too.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.system.cluster import detect

CFG = RunConfig(
    strategy="tf-multiworker", workers=2, threads_per_worker=1,
    data=DataConfig("synthetic", synthetic_samples=97, synthetic_shape=(1, 8, 8)),
    model=ModelConfig("mlp-25"), epochs=1, batch_size=16, optimizer="sgd", lr=0.1,
    warmup_steps=2, calibration_steps=0, progress=False,
)


def weights(model: Any) -> list[np.ndarray]:
    return [v.numpy() for v in model.trainable_variables]


def reference(trainer: Any, rank: int, world: int, full: bool) -> list[np.ndarray]:
    """Train a fresh one-replica copy for one epoch on (rank of world)'s batches."""
    import tensorflow as tf

    from distbench.training.tf_data import InputPipeline

    data = trainer.data
    pipe = InputPipeline(data.train_x, data.train_y, seed=CFG.seed, rank=rank,
                         world=world, global_batch=CFG.batch_size)
    default = tf.distribute.get_strategy()
    loop = trainer.make_loop(default, default.experimental_distribute_dataset)
    # The whole global step's samples, or this shard's own batch when it trains alone.
    counts = pipe.counts() if full else [len(b) for b in pipe.index_batches(0)]
    loop.train_epoch(loop.epoch_inputs(pipe, 1)(0), counts, None)
    return weights(loop.model)


def main(out: Path) -> None:
    from distbench.training import worker

    kept: dict[str, Any] = {}
    make_trainer = worker.make_trainer

    def keep(*args: Any) -> Any:
        kept["trainer"] = make_trainer(*args)
        return kept["trainer"]

    worker.make_trainer = keep  # type: ignore[assignment]
    env = detect()
    worker.run_worker(replace(CFG, out=str(out)), env)
    trainer = kept["trainer"]
    np.savez(out / f"rank{env.rank}.npz", *weights(trainer.model))
    if env.rank == 0:
        np.savez(out / "one_shard.npz", *reference(trainer, 0, 2, full=False))
        np.savez(out / "full_batch.npz", *reference(trainer, 0, 1, full=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
