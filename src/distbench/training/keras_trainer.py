"""The Keras side of the one training driver (`driver.py`): every TF row (tf-single,
tf-mirrored, tf-custom, tf-multiworker) runs through it, with the PyTorch rows' timing rules.

Command: distbench run --strategy tf-mirrored --workers 2 --dataset mnist-5k --epochs 1

- Same seed -> same initial weights (and MultiWorkerMirroredStrategy broadcasts worker 0's).
- Warm-up restores every variable a step changes (weights, optimizer slots and iteration
  counter, dropout RNG state) to its value before warm-up.
- `--compile` is XLA (`jit_compile`). Only XLA's own compilation errors make a run fall back to
  plain graphs. A TF step cannot be tried without its collectives; XLA, though, fails while
  compiling, before any collective runs, and every tf-multiworker worker compiles the same step.
- Communication share: after training, `--calibration-steps` steps with all replicas against the
  same steps of one replica on the same per-replica batch (see `tf_base.REPLICA_CALIBRATION`),
  both per step and in the calls training makes (`--tf-steps-per-execution`), after whole
  untimed calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from distbench.core.config import RunConfig
from distbench.data import Dataset
from distbench.models.keras_models import build_keras_model
from distbench.strategies import CommMeasure
from distbench.strategies.tf_base import TFStrategy
from distbench.training.driver import EVAL_BATCH, EpochDriver
from distbench.training.progress import StepHook
from distbench.training.tf_data import InputPipeline, nhwc
from distbench.training.tf_loops import LOOPS, Loop, per_sample_loss

CALIBRATION_TRACE_STEPS = 2  # untimed steps before the one-replica reference is timed
# What XLA's compilation errors say: TensorFlow raises them as generic errors, the words differ.
XLA_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError)
XLA_MARKERS = ("tf2xla", "xla/known_issues", "XLA compilation", "XLA_CPU_JIT", "XLA_GPU_JIT",
               "when trying to compile")


def first_reason(exc: BaseException) -> str:
    """The first line of a TensorFlow error that says what went wrong, not where."""
    noise = ("Graph execution error", "Detected at node", "[[", "Cf.", "File ",
             "<stack traces unavailable>", "Stack trace for op definition")
    lines = [ln.strip() for ln in str(exc).splitlines()
             if ln.strip() and not ln.startswith((" ", "\t"))]
    return next((ln for ln in lines if not ln.startswith(noise)), lines[0] if lines else "")


def xla_failure(exc: BaseException) -> str | None:
    """'Type: reason' when `exc` is XLA failing to compile a step, None for any other error
    (a peer gone is Unavailable, Cancelled or Aborted; a bad argument does not mention XLA)."""
    if not isinstance(exc, XLA_ERRORS) or not any(m in str(exc) for m in XLA_MARKERS):
        return None
    return f"{type(exc).__name__}: {first_reason(exc)[:160]}"


def variable_bytes(variable: Any) -> int:
    """Bytes of a Keras variable in this process: every replica's component of a mirrored one."""
    value = getattr(variable, "value", variable)
    components = getattr(value, "values", None) or (value,)
    return sum(int(np.prod(c.shape)) * c.dtype.size for c in components)


class VariableSnapshot:
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
        self.images, self.labels = images[rank::world], labels[rank::world]  # NCHW views
        self.model = model
        channels, height, width = images.shape[1:]
        spec = (tf.TensorSpec((None, height, width, channels), tf.float32),
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
            batch_loss, batch_correct = self.batch(nhwc(self.images[part]), self.labels[part])
            loss += float(batch_loss)
            correct += float(batch_correct)
        return [loss, correct, float(len(self.labels))]


class KerasTrainer(EpochDriver):
    """The Keras step, epoch, evaluation and calibration; `run()` is the driver's."""

    strategy: TFStrategy

    def __init__(self, cfg: RunConfig, strategy: TFStrategy, data: Dataset) -> None:
        self.cfg, self.strategy, self.data = cfg, strategy, data
        self.n_train = len(data.train_y)
        self.pipeline = InputPipeline(
            data.train_x, data.train_y, seed=cfg.seed, rank=strategy.rank,
            world=strategy.world, global_batch=cfg.global_batch,
            shuffle_buffer=cfg.tf_shuffle_buffer, prefetch=cfg.tf_prefetch,
        )
        self.loop = self.make_loop(strategy.tf_strategy, strategy.distribute)
        self.model = self.loop.model
        self.evaluator = Evaluator(self.model, data.test_x, data.test_y, strategy.rank,
                                   strategy.world)
        self.per_replica_batch = self.observe_per_replica_batch()
        self.compile_note = "--compile: XLA (jit_compile=True)" if cfg.model.compile else None

    def make_loop(self, dist: Any, distribute: Any) -> Loop:
        """The strategy's loop, its model created in `dist`'s scope from the run's seed."""
        cfg, data = self.cfg, self.data

        def model_fn() -> keras.Model:
            return build_keras_model(cfg.model, data.input_shape, data.num_classes, data.mean,
                                     data.std, seed=cfg.seed)

        return LOOPS[self.strategy.loop](dist, model_fn, cfg, distribute,
                                         reduce_every_step=self.strategy.reduce_loss_every_step)

    def observe_per_replica_batch(self) -> list[int]:
        """Batch sizes the replicas of this process actually receive at the first step."""
        images, _ = next(iter(self.strategy.distribute(self.pipeline.dataset(0))))
        local = self.strategy.tf_strategy.experimental_local_results(images)
        return [int(t.shape[0]) for t in local]

    # ---- the driver's parts
    def snapshot(self) -> VariableSnapshot:
        return VariableSnapshot(self.loop.state)

    def warm_up_steps(self, steps: int) -> None:
        self.loop.step_times(self.pipeline.dataset(0), self.pipeline.counts(), steps)

    def try_compiled_step(self) -> None:
        self.warm_up_steps(1)  # the loop compiles with XLA from the start (`Loop.xla`)

    def compile_failure(self, exc: Exception) -> str | None:
        return xla_failure(exc)

    def fall_back(self, reason: str) -> str:
        self.loop.without_xla()
        return f"--compile (XLA) unavailable here ({reason}); ran without XLA"

    def before_timed_epochs(self) -> None:
        """The loop's input for every timed epoch. (The dropout RNG state is a variable,
        restored with the warm-up snapshot.)"""
        self.epoch_inputs = self.loop.epoch_inputs(self.pipeline, self.cfg.epochs)

    def epoch_input(self, epoch: int) -> Any:
        return self.epoch_inputs(epoch)

    def train_epoch(self, prepared: Any, hook: StepHook | None) -> float:
        return self.loop.train_epoch(prepared, self.pipeline.counts(), hook)

    def local_evaluation(self) -> list[float]:
        return self.evaluator()

    @property
    def calibrated(self) -> bool:
        """Replicas exchange gradients inside TensorFlow's step, where they cannot be timed."""
        return (self.strategy.info.comm is CommMeasure.REPLICA_CALIBRATION
                and self.strategy.replicas > 1)

    def calibration_times(self, steps: int, snapshot: VariableSnapshot
                          ) -> tuple[list[float], list[float]]:
        """Steps with all replicas, then the same steps of one replica on the same per-replica
        batch: the same loop under TensorFlow's default strategy, from the same weights."""
        self.strategy.barrier()
        synced = self.loop.step_times(self.pipeline.dataset(0), self.pipeline.counts(), steps,
                                      skip=1)  # untimed: a fresh iterator starts
        snapshot.restore()
        per_replica = self.cfg.global_batch // self.strategy.replicas
        reference = self.pipeline.resharded(rank=0, world=1, global_batch=per_replica)
        default = tf.distribute.get_strategy()
        alone = self.make_loop(default, default.experimental_distribute_dataset)
        if alone.xla and not self.loop.xla:  # the same code path as the timed steps
            alone.without_xla()
        for target, source in zip(alone.model.variables, self.model.variables, strict=True):
            target.assign(source.numpy())
        self.strategy.barrier()
        single = alone.step_times(reference.dataset(0), reference.counts(), steps,
                                  skip=CALIBRATION_TRACE_STEPS)
        self.strategy.barrier()
        return synced, single

    def threads(self) -> int:
        return tf.config.threading.get_intra_op_parallelism_threads()

    def rank_fields(self) -> dict[str, Any]:
        return {"per_replica_batch": self.per_replica_batch}

    def memory_fields(self) -> dict[str, Any]:
        """Each replica holds a full copy of the weights and optimizer slots (the components of
        a mirrored variable); gradients exist only inside a step, counted as the trainable
        weights' bytes per replica since they have their shapes."""
        loop = self.loop
        held = sum(variable_bytes(v) for v in [*loop.model.variables, *loop.optimizer.variables])
        grads = sum(variable_bytes(v) for v in loop.model.trainable_variables)
        return {"model_state_bytes": held + grads, "cuda_peak_mb": None}

    def param_count(self) -> int:
        return int(self.model.count_params())

    def record_fields(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.strategy
        return {
            "replicas": s.replicas,
            "per_replica_batch": [b for r in ranks for b in r["per_replica_batch"]],
            "tf_loop": self.loop.description,
            # What the steps actually ran with: XLA after any fallback.
            "tf_execution": {"steps_per_execution": self.loop.steps_per_execution,
                             "jit_compile": self.loop.xla,
                             "optimizer_update": getattr(self.loop.optimizer, "update_kernel",
                                                         "keras ops")},
            "input_pipeline": self.pipeline.describe(),
            "tensorflow_threads": {
                "intra_op": ranks[0]["threads"],
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            },
        }

    def gather_weights(self) -> None:
        """Every replica holds the whole model: nothing to gather."""

    def save_weights(self) -> tuple[Callable[[Path], None], dict[str, Any]]:
        """`model.keras`: architecture and weights of an uncompiled copy, which loads with
        Keras alone (no distbench optimizer classes, no distribution strategy)."""
        plain = keras.Model.from_config(self.model.get_config())
        plain.set_weights(self.model.get_weights())
        return (lambda path: plain.save(path)), {}
