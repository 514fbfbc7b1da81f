"""The one Keras-side trainer: every TF row (tf-single, tf-mirrored, tf-custom, tf-multiworker)
runs through it, with the same timing rules as the PyTorch loop in `train.py`.

Command: distbench run --strategy tf-mirrored --workers 2 --dataset mnist-5k --epochs 1

- Same seed -> same initial weights (and MultiWorkerMirroredStrategy broadcasts worker 0's).
- Warm-up: `--warmup-steps` real steps trace the step function and warm the pipeline; then every
  variable a step changes (weights, optimizer slots and iteration counter, dropout RNG state) is
  restored to its value before warm-up, as `train.Trainer.warm_up` does.
- Each epoch is timed from a barrier to the end of its last step; evaluation on the full test set
  (each worker a strided part, summed) happens after the clock stops.
- Train time is the slowest worker's; throughput is global samples / that time.
- Communication share: after training, `--calibration-steps` steps with all replicas against the
  same steps of one replica on the same per-replica batch (see `tf_base.REPLICA_CALIBRATION`);
  the model is restored afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from distbench.core.config import RunConfig
from distbench.data import Dataset
from distbench.data.sharding import describe_sharding
from distbench.models.keras_models import build_keras_model
from distbench.strategies.tf_base import TFStrategy
from distbench.system.timing import clock, median, rank_row, summarize_ranks
from distbench.training.progress import TrainProgress
from distbench.training.tf_data import InputPipeline, nhwc
from distbench.training.tf_loops import LOOPS, Loop, StepHook, per_sample_loss

EVAL_BATCH = 1024
CALIBRATION_TRACE_STEPS = 2  # untimed steps before the one-replica reference is timed
WEIGHTS, SIDECAR = "model.keras", "model.json"


def first_reason(exc: BaseException) -> str:
    """The first line of a TensorFlow error that says what went wrong, not where."""
    noise = ("Graph execution error", "Detected at node", "[[", "Cf.", "File ")
    lines = [ln.strip() for ln in str(exc).splitlines()
             if ln.strip() and not ln.startswith((" ", "\t"))]
    return next((ln for ln in lines if not ln.startswith(noise)), lines[0] if lines else "")


class Snapshot:
    """Values of a list of variables, to put back later (warm-up, calibration)."""

    def __init__(self, variables: list[Any]) -> None:
        self.variables = variables
        self.values = [v.numpy() for v in variables]

    def restore(self) -> None:
        for variable, value in zip(self.variables, self.values, strict=True):
            variable.assign(value)


class Evaluator:
    """(summed loss, correct, count) on this worker's strided part of the test set."""

    def __init__(self, model: keras.Model, images: np.ndarray, labels: np.ndarray, rank: int,
                 world: int) -> None:
        self.images, self.labels = images[rank::world], labels[rank::world]
        self.model = model
        spec = (tf.TensorSpec((None, *images.shape[1:]), tf.float32),
                tf.TensorSpec((None,), tf.int64))
        self.batch = tf.function(self._batch, input_signature=spec)

    def _batch(self, images: Any, labels: Any) -> tuple[Any, Any]:
        logits = self.model(images, training=False)
        correct = tf.equal(tf.argmax(logits, axis=1), labels)
        return (tf.reduce_sum(per_sample_loss(labels, logits)),
                tf.reduce_sum(tf.cast(correct, tf.float32)))

    def __call__(self) -> list[float]:
        loss = correct = 0.0
        for start in range(0, len(self.labels), EVAL_BATCH):
            part = slice(start, start + EVAL_BATCH)
            batch_loss, batch_correct = self.batch(self.images[part], self.labels[part])
            loss += float(batch_loss)
            correct += float(batch_correct)
        return [loss, correct, float(len(self.labels))]


class KerasTrainer:
    """Holds what the phases share; `run()` is the whole measured training of one worker."""

    def __init__(self, cfg: RunConfig, strategy: TFStrategy, data: Dataset) -> None:
        self.cfg, self.strategy, self.data = cfg, strategy, data
        self.n_train = len(data.train_y)
        self.train_images = nhwc(data.train_x)  # once; the calibration's reference reuses it
        self.pipeline = InputPipeline(
            self.train_images, data.train_y, seed=cfg.seed, rank=strategy.rank,
            world=strategy.world, global_batch=cfg.global_batch,
            shuffle_buffer=cfg.tf_shuffle_buffer, prefetch=cfg.tf_prefetch,
        )
        self.loop = self.make_loop(strategy.tf_strategy, strategy.distribute)
        self.model = self.loop.model
        self.evaluator = Evaluator(self.model, nhwc(data.test_x), data.test_y, strategy.rank,
                                   strategy.world)
        self.per_replica_batch = self.observe_per_replica_batch()
        self.compile_note = "--compile: XLA (jit_compile=True)" if cfg.model.compile else None

    def make_loop(self, dist: Any, distribute: Any) -> Loop:
        """The strategy's loop, its model created in `dist`'s scope from the run's seed."""
        cfg, data = self.cfg, self.data

        def model_fn() -> keras.Model:
            return build_keras_model(cfg.model, data.input_shape, data.num_classes, data.mean,
                                     data.std, seed=cfg.seed)

        kind = self.strategy.loop
        extra = ({"reduce_every_step": self.strategy.reduce_loss_every_step}
                 if kind == "custom" else {})
        return LOOPS[kind](dist, model_fn, cfg, distribute, **extra)

    def observe_per_replica_batch(self) -> list[int]:
        """Batch sizes the replicas of this process actually receive at the first step."""
        images, _ = next(iter(self.strategy.distribute(self.pipeline.dataset(0))))
        local = self.strategy.tf_strategy.experimental_local_results(images)
        return [int(t.shape[0]) for t in local]

    # ---- phases
    def warm_up(self) -> None:
        """Run the first steps (tracing, allocation, pipeline start), then undo them."""
        steps = min(self.cfg.warmup_steps, self.pipeline.steps)
        if steps == 0:
            return
        snapshot = Snapshot(self.loop.state)
        try:
            self.loop.step_times(self.pipeline.dataset(0), self.pipeline.counts(), steps)
        except Exception as exc:  # noqa: BLE001 - any XLA failure means "without XLA instead"
            if not self.loop.xla:
                raise
            self.compile_note = (f"--compile (XLA) unavailable here ({type(exc).__name__}: "
                                 f"{first_reason(exc)[:160]}); ran without XLA")
            snapshot.restore()
            self.loop.without_xla()
            self.loop.step_times(self.pipeline.dataset(0), self.pipeline.counts(), steps)
        snapshot.restore()
        self.strategy.reset()

    def evaluate(self) -> tuple[float, float]:
        loss, correct, count = self.strategy.all_reduce_sum(self.evaluator())
        return correct / count, loss / count

    def calibrate(self) -> float | None:
        """Per-step communication time: median step with all replicas minus median step of one
        replica on the same per-replica batch; None for one replica or no calibration steps."""
        k = self.cfg.calibration_steps
        if self.strategy.replicas == 1 or k == 0:
            return None
        snapshot = Snapshot(self.loop.state)
        self.strategy.barrier()
        synced = self.loop.step_times(self.pipeline.dataset(0), self.pipeline.counts(), k + 1)[1:]
        snapshot.restore()
        per_replica = self.cfg.global_batch // self.strategy.replicas
        reference = InputPipeline(
            self.train_images, self.data.train_y, seed=self.cfg.seed, rank=0, world=1,
            global_batch=per_replica, prefetch=self.cfg.tf_prefetch,
        )
        default = tf.distribute.get_strategy()
        alone = self.make_loop(default, default.experimental_distribute_dataset)
        if alone.xla and not self.loop.xla:  # the same code path as the timed steps
            alone.without_xla()
        for target, source in zip(alone.model.variables, self.model.variables, strict=True):
            target.assign(source.numpy())
        self.strategy.barrier()
        single = alone.step_times(reference.dataset(0), reference.counts(),
                                  k + CALIBRATION_TRACE_STEPS)[CALIBRATION_TRACE_STEPS:]
        self.strategy.barrier()
        return max(0.0, median(synced) - median(single))

    def run(self) -> dict[str, Any]:
        cfg, s = self.cfg, self.strategy
        self.warm_up()
        steps_per_epoch = self.pipeline.steps
        progress = TrainProgress(enabled=cfg.progress and s.rank == 0, epochs=cfg.epochs,
                                 steps_per_epoch=steps_per_epoch)
        epoch_s: list[float] = []
        history: list[dict[str, Any]] = []
        with progress:
            for epoch in range(cfg.epochs):
                dataset = self.pipeline.dataset(epoch)
                s.barrier()
                start = clock()
                local_loss = self.loop.train_epoch(dataset, self.pipeline.counts(),
                                                   self.progress_hook(progress, epoch, start))
                epoch_s.append(clock() - start)
                train_loss = s.all_reduce_sum([local_loss])[0] / self.n_train
                accuracy, test_loss = self.evaluate()
                history.append({"epoch": epoch + 1, "time_s": sum(epoch_s),
                                "train_loss": train_loss, "test_accuracy": accuracy,
                                "test_loss": test_loss})
                progress.end_epoch(epoch, train_loss, accuracy)
        step_sync = self.calibrate()
        return self.measurements(epoch_s, history, steps_per_epoch * cfg.epochs, step_sync)

    def progress_hook(self, progress: TrainProgress, epoch: int, start: float) -> StepHook | None:
        if not progress.enabled:
            return None
        batch = self.cfg.global_batch

        def hook(step: int, mean_loss: Any) -> None:
            if progress.due(step):
                rate = (step + 1) * batch / (clock() - start)
                progress.update(epoch, step + 1, mean_loss(), rate)

        return hook

    def measurements(self, epoch_s: list[float], history: list[dict[str, Any]], steps: int,
                     step_sync: float | None) -> dict[str, Any]:
        """Gather every worker's timings; the record keeps the slowest worker's train time."""
        s, cfg = self.strategy, self.cfg
        if step_sync is not None:
            comm: float | None = step_sync * steps
        else:  # one replica exchanges nothing; --calibration-steps 0 measures nothing
            comm = 0.0 if s.replicas == 1 else None
        threads = tf.config.threading.get_intra_op_parallelism_threads()
        row = rank_row(s.rank, threads, epoch_s, comm)
        ranks = s.all_gather({**row, "per_replica_batch": self.per_replica_batch})
        return {
            **summarize_ranks(ranks, history, self.n_train, cfg.target_accuracy),
            "steps": steps,
            "comm_method": s.comm_method,
            "compile_note": self.compile_note,
            "sharding": describe_sharding(self.n_train, cfg.global_batch),
            "replicas": s.replicas,
            "per_replica_batch": [b for r in ranks for b in r["per_replica_batch"]],
            "tf_loop": ("model.fit" if s.loop == "fit" else "custom tf.function loop with "
                        "strategy.run"),
            "input_pipeline": self.pipeline.describe(),
            "tensorflow_threads": {
                "intra_op": ranks[0]["threads"],
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            },
        }

    def save_checkpoint(self, record: dict[str, Any]) -> Path:
        """`<out>/model.keras` (architecture and weights) and the `model.json` sidecar."""
        cfg, data = self.cfg, self.data
        out = Path(cfg.out or ".")
        out.mkdir(parents=True, exist_ok=True)
        weights = out / WEIGHTS
        tmp = out / f".tmp-{WEIGHTS}"
        # An uncompiled copy: loading then needs neither distbench's optimizer classes nor a
        # distribution strategy, only Keras.
        plain = keras.Model.from_config(self.model.get_config())
        plain.set_weights(self.model.get_weights())
        plain.save(tmp)
        os.replace(tmp, weights)
        meta = {
            "framework": "tensorflow",
            "model": cfg.model.name,
            "image_size": cfg.model.image_size,
            "dataset": cfg.data.name,
            "classes": data.classes,
            "input_shape": list(data.input_shape),
            "input_layout": "NHWC (transpose the dataset's NCHW arrays)",
            "normalisation": {"mean": data.mean, "std": data.std,
                              "pixels": "[0, 1]; the model normalises internally"},
            "run_id": record["run_id"],
            "strategy": cfg.strategy,
            "workers": cfg.workers,
            "test_accuracy": record["test_accuracy"],
            "load_with": "keras.models.load_model(path)",
        }
        (out / SIDECAR).write_text(json.dumps(meta, indent=2) + "\n")
        return weights
