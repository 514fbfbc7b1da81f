"""The two ways a TF row trains: Keras' `model.fit`, or a custom `strategy.run` loop.

Command: distbench run --strategy tf-custom --workers 2 --dataset mnist-5k --epochs 1

Both loops share the model, the optimizer (built here, so warm-up can snapshot its state) and the
interface the trainer uses: `train_epoch` (one epoch, returns this process's summed loss) and
`step_times` (per-step wall times, for the communication calibration). The same class under
TensorFlow's default strategy is the one-replica reference of that calibration.

Optimizers follow PyTorch's, not Keras' defaults: Adam's epsilon is 1e-8, SGD's momentum is
PyTorch's (Keras' form is equivalent at a constant learning rate), and `--weight-decay` is
PyTorch's coupled L2 (added to the averaged gradient before the update), not Keras' decoupled
decay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import keras
import tensorflow as tf

from distbench.core.config import RunConfig
from distbench.system.timing import clock
from distbench.training.progress import StepHook


class _CoupledL2:
    """Adds `l2 * w` to each already all-reduced gradient, as torch.optim's weight_decay does."""

    def __init__(self, *args: Any, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.l2 = l2

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.l2:
            gradient = gradient + tf.cast(self.l2, gradient.dtype) * variable
        super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]


class TorchAdam(_CoupledL2, keras.optimizers.Adam):
    pass


class TorchSGD(_CoupledL2, keras.optimizers.SGD):
    pass


def make_optimizer(cfg: RunConfig) -> keras.optimizers.Optimizer:
    if cfg.optimizer == "sgd":
        return TorchSGD(learning_rate=cfg.lr, momentum=cfg.momentum, l2=cfg.weight_decay)
    return TorchAdam(learning_rate=cfg.lr, epsilon=1e-8, l2=cfg.weight_decay)


def per_sample_loss(labels: Any, logits: Any) -> Any:
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


class Loop:
    """What both loops share: the model and optimizer, created in the strategy's scope."""

    description: str  # the record's `tf_loop`

    def __init__(self, dist: Any, model_fn: Callable[[], keras.Model], cfg: RunConfig,
                 distribute: Callable[[Any], Any], reduce_every_step: bool = True) -> None:
        """`reduce_every_step`: the custom loop reduces each step's loss across replicas (else
        it sums locally and the trainer reduces once per epoch); `model.fit` always does."""
        self.dist, self.cfg, self.distribute = dist, cfg, distribute
        self.reduce_every_step = reduce_every_step
        self.xla = cfg.model.compile  # --compile: XLA (jit_compile) for the TF rows
        with dist.scope():
            self.model = model_fn()
            self.optimizer = make_optimizer(cfg)
            self.optimizer.build(self.model.trainable_variables)
            self.prepare()

    def prepare(self) -> None:
        """Compile or trace, inside the strategy's scope."""

    def without_xla(self) -> None:
        """Fall back from XLA (it fails, e.g., on variables of other logical devices)."""
        self.xla = False
        with self.dist.scope():
            self.prepare()

    def train_epoch(self, dataset: Any, counts: list[int], hook: StepHook | None) -> float:
        raise NotImplementedError

    def step_times(self, dataset: Any, counts: list[int], steps: int) -> list[float]:
        raise NotImplementedError

    @property
    def state(self) -> list[Any]:
        """Every variable a step changes: weights, optimizer slots and counters, RNG states."""
        return [*self.model.variables, *self.optimizer.variables]


class FitLoop(Loop):
    """`model.fit`, one call per epoch on that epoch's dataset; Keras distributes the steps."""

    description = "model.fit"

    def prepare(self) -> None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.model.compile(optimizer=self.optimizer, loss=loss, jit_compile=self.xla)

    def train_epoch(self, dataset: Any, counts: list[int], hook: StepHook | None) -> float:
        callbacks = [_HookCallback(hook)] if hook else []
        history = self.model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
        return float(history.history["loss"][0]) * sum(counts)

    def step_times(self, dataset: Any, counts: list[int], steps: int) -> list[float]:
        timer = _StepTimer()
        self.model.fit(dataset.take(steps), epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return timer.times


class CustomLoop(Loop):
    """A `tf.function` `distributed_train_step` that calls `strategy.run` on each replica."""

    description = "custom tf.function loop with strategy.run"

    def replica_step(self, images: Any, labels: Any, count: Any) -> Any:
        """One replica: its summed loss / the global step's samples, so that the optimizer's
        sum over replicas is the gradient of the global mean loss."""
        with tf.GradientTape() as tape:
            losses = per_sample_loss(labels, self.model(images, training=True))
            loss = tf.nn.compute_average_loss(losses, global_batch_size=count)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return tf.reduce_sum(losses)

    def distributed_train_step(self, iterator: Any, count: Any) -> Any:
        """One global step. The iterator goes into the `tf.function` and `next` runs in the
        graph (as in Keras' own train function): handing each distributed batch in from Python
        instead costs about 3x the step time of a small model here."""
        images, labels = next(iterator)
        per_replica = self.dist.run(self._replica_step, args=(images, labels, count))
        if self.reduce_every_step:
            return self.dist.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        return tf.add_n(self.dist.experimental_local_results(per_replica))

    def prepare(self) -> None:
        self._step: Any = None  # traced again at the next step
        self._replica_step: Any = None

    def _steps(self, dataset: Any, counts: list[int]) -> Iterable[tuple[Any, Any, Any]]:
        """(compiled step, this epoch's distributed iterator, the step's sample count) per step."""
        if self._step is None:
            # Traced once (the last, smaller batch has the same spec); --compile: XLA per replica.
            self._replica_step = (tf.function(self.replica_step, jit_compile=True)
                                  if self.xla else self.replica_step)
            self._step = tf.function(self.distributed_train_step)
        iterator = iter(self.distribute(dataset))
        count_tensors = {c: tf.constant(c, tf.int32) for c in set(counts)}
        for count in counts:
            yield self._step, iterator, count_tensors[count]

    def train_epoch(self, dataset: Any, counts: list[int], hook: StepHook | None) -> float:
        total = tf.zeros([], tf.float32)
        share = self.loss_share() if hook is not None else 1.0
        seen = 0
        for k, (step, iterator, count) in enumerate(self._steps(dataset, counts)):
            total += step(iterator, count)
            seen += counts[k]
            if hook is not None:
                hook(k, lambda t=total, n=seen: float(t) / (n * share))
        return float(total)

    def loss_share(self) -> float:
        """Share of each step's samples whose loss this process sums (for the progress bar)."""
        if self.reduce_every_step or self.dist.num_replicas_in_sync == 1:
            return 1.0
        return len(self.dist.extended.worker_devices) / self.dist.num_replicas_in_sync

    def step_times(self, dataset: Any, counts: list[int], steps: int) -> list[float]:
        times = []
        for k, (step, iterator, count) in enumerate(self._steps(dataset, counts)):
            if k == steps:
                break
            start = clock()
            step(iterator, count).numpy()
            times.append(clock() - start)
        return times


LOOPS: dict[str, type[Loop]] = {"fit": FitLoop, "custom": CustomLoop}


class _HookCallback(keras.callbacks.Callback):
    """Passes fit's batch ends to the trainer's progress hook."""

    def __init__(self, hook: StepHook) -> None:
        super().__init__()
        self.hook = hook

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.hook(batch, lambda: float((logs or {}).get("loss", float("nan"))))


class _StepTimer(keras.callbacks.Callback):
    """Wall time of each of fit's steps (batch begin to batch end)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = clock()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.times.append(clock() - self._start)
