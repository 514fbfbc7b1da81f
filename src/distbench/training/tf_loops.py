"""The two ways a TF row trains: Keras' `model.fit`, or a custom `strategy.run` loop.

Command: distbench run --strategy tf-custom --workers 2 --dataset mnist-5k --epochs 1

Both loops share the model, the optimizer (built here, so warm-up can snapshot its state) and the
interface the trainer uses: `train_epoch` (one epoch, returns this process's summed loss) and
`step_times` (per-step wall times, for warm-up and the communication calibration). The same
class under TensorFlow's default strategy is the one-replica reference of that calibration.

`--tf-steps-per-execution N` runs up to N consecutive steps per call from Python into the
compiled step, in both loops alike: Keras' `steps_per_execution` for `model.fit`, a `tf.range`
loop around the step for the custom loop. The steps, their order and their batches stay the
same; only the Python dispatch between them goes. Progress is reported once per call, and
`step_times` shares each call's time equally among its steps.

Optimizers follow PyTorch's, not Keras' defaults: Adam's epsilon is 1e-8, SGD's momentum is
PyTorch's (Keras' form is equivalent at a constant learning rate), and `--weight-decay` is
PyTorch's coupled L2 (added to the averaged gradient before the update), not Keras' decoupled
decay.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import keras
import tensorflow as tf

from distbench.core.config import RunConfig
from distbench.system.timing import clock
from distbench.training.progress import StepHook
from distbench.training.tf_data import InputPipeline


class _CoupledL2:
    """Adds `l2 * w` to each already all-reduced gradient, as torch.optim's weight_decay does."""

    def __init__(self, *args: Any, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.l2 = l2

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.l2:
            gradient = gradient + tf.cast(self.l2, gradient.dtype) * variable
        super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]


class _FusedAdam(keras.optimizers.Adam):
    """Keras' Adam update in TensorFlow's one fused kernel per variable (`ResourceApplyAdam`, the
    kernel tf.keras' Adam called): the same formula as Keras' own ops (epsilon added to the
    bias-corrected sqrt(v), step size lr * sqrt(1 - beta2^t) / (1 - beta1^t)), which cost a
    one-process TF row's mlp-128 step at batch 32 a fifth to a third of its time in about a
    dozen small ops per variable. What the kernel does not take (sparse gradients, amsgrad)
    keeps Keras' ops. Under a distribution strategy `update_step` runs inside its update call,
    where a slot's `handle` is this replica's copy."""

    update_kernel = "ResourceApplyAdam"

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1,
            beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False)


class TorchAdam(_CoupledL2, _FusedAdam):
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
        self.steps_per_execution = cfg.tf_steps_per_execution
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

    def epoch_inputs(self, pipeline: InputPipeline, epochs: int) -> Callable[[int], Any]:
        """What `train_epoch` consumes for each timed epoch, made before the first one."""
        return pipeline.dataset

    def train_epoch(self, source: Any, counts: list[int], hook: StepHook | None) -> float:
        """One epoch from `source`, what `epoch_inputs` gave for it."""
        raise NotImplementedError

    def step_times(self, dataset: Any, counts: list[int], steps: int, skip: int = 0
                   ) -> list[float]:
        """Per-step wall times of `steps` steps run after `skip` untimed ones, from the start of
        `dataset` (its batches used again where it is shorter).

        Steps run in the calls training makes; a call's time is shared equally among its steps.
        The calls that hold any of the first `skip` steps are all untimed, so what a first call
        absorbs (tracing, a fresh iterator filling its buffer) never lands on a timed step."""
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
        self.model.compile(optimizer=self.optimizer, loss=loss, jit_compile=self.xla,
                           steps_per_execution=self.steps_per_execution)
        self.keep_iterators()

    def keep_iterators(self) -> None:
        """Keep every iterator `fit` hands its train function alive until the process ends.

        `fit` makes an iterator per call and deletes it as the call returns, inside the epoch's
        clock; under a distribution strategy that deletion waits for tf.data's autotuning
        thread of the strategy's per-device datasets (`InputPipeline.epochs_dataset`), which
        made `fit` return 0.35-0.40 s after its last step in five `tf-mirrored` epochs of
        eight. Kept here, no iterator is deleted before the worker leaves with `os._exit`, as
        in the custom loop; the cost is each epoch's iterator's buffers and threads, held."""
        self.kept: list[Any] = []
        self.model.make_train_function()
        train_function = self.model.train_function

        def keeping(iterator: Any) -> Any:
            if not self.kept or self.kept[-1] is not iterator:
                self.kept.append(iterator)
            return train_function(iterator)

        self.model.train_function = keeping

    def train_epoch(self, dataset: Any, counts: list[int], hook: StepHook | None) -> float:
        callbacks = [_HookCallback(hook, len(counts))] if hook else []
        history = self.model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
        return float(history.history["loss"][0]) * sum(counts)

    def step_times(self, dataset: Any, counts: list[int], steps: int, skip: int = 0
                   ) -> list[float]:
        n = self.steps_per_execution
        untimed = -(-skip // n) * n  # whole executions: Keras starts one every n steps
        timer = _StepTimer(untimed, untimed + steps)
        self.model.fit(dataset.repeat().take(untimed + steps), epochs=1, verbose=0,
                       shuffle=False, callbacks=[timer])
        return timer.times


class CustomLoop(Loop):
    """A `distributed_train_step` that calls `strategy.run` on each replica, compiled in a
    `tf.function` (`multi_step`) that runs up to `--tf-steps-per-execution` of them per call."""

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

    def multi_step(self, iterator: Any, count: Any, n: Any) -> Any:
        """`n` consecutive global steps of `count` samples each in one call, their losses
        summed. With one step per execution it is `distributed_train_step` alone, no loop."""
        if self.steps_per_execution == 1:
            return self.distributed_train_step(iterator, count)
        total = tf.zeros([], tf.float32)
        for _ in tf.range(n):
            total += self.distributed_train_step(iterator, count)
        return total

    def prepare(self) -> None:
        self._step: Any = None  # traced again at the next step
        self._replica_step: Any = None
        self._ints: dict[int, Any] = {}

    def _compiled(self) -> Any:
        """The compiled call, traced once: step counts and sample counts are tensors, and the
        last, smaller batch has the same spec. --compile: XLA per replica."""
        if self._step is None:
            self._replica_step = (tf.function(self.replica_step, jit_compile=True)
                                  if self.xla else self.replica_step)
            self._step = tf.function(self.multi_step)
        return self._step

    def _int(self, value: int) -> Any:
        if value not in self._ints:
            self._ints[value] = tf.constant(value, tf.int32)
        return self._ints[value]

    def epoch_inputs(self, pipeline: InputPipeline, epochs: int) -> Callable[[int], Any]:
        """One distributed iterator for all timed epochs (`InputPipeline.epochs_dataset` says
        why), made now, outside every clock; each epoch runs on from where the last ended."""
        iterator = iter(self.distribute(pipeline.epochs_dataset(epochs)))
        return lambda _epoch: iterator

    def train_epoch(self, iterator: Any, counts: list[int], hook: StepHook | None) -> float:
        step = self._compiled()
        total = tf.zeros([], tf.float32)
        share = self.loss_share() if hook is not None else 1.0
        done = seen = 0
        for size, count in calls(counts, self.steps_per_execution):
            total += step(iterator, self._int(count), self._int(size))
            done, seen = done + size, seen + size * count
            if hook is not None:
                hook(done - 1, lambda t=total, n=seen: float(t) / (n * share))
        return float(total)

    def loss_share(self) -> float:
        """Share of each step's samples whose loss this process sums (for the progress bar)."""
        if self.reduce_every_step or self.dist.num_replicas_in_sync == 1:
            return 1.0
        return len(self.dist.extended.worker_devices) / self.dist.num_replicas_in_sync

    def step_times(self, dataset: Any, counts: list[int], steps: int, skip: int = 0
                   ) -> list[float]:
        step, iterator = self._compiled(), iter(self.distribute(dataset.repeat()))
        times: list[float] = []
        done = 0
        for size, count in calls(itertools.cycle(counts), self.steps_per_execution):
            timed = done >= skip
            if timed:
                size = min(size, steps - len(times))
                if size == 0:
                    break
            start = clock()
            step(iterator, self._int(count), self._int(size)).numpy()
            elapsed = clock() - start
            if timed:
                times += [elapsed / size] * size
            done += size
        return times


def calls(counts: Iterable[int], n: int) -> Iterator[tuple[int, int]]:
    """(steps, samples per step) of each call of the custom loop: runs of at most `n`
    consecutive steps with the same global sample count, so an epoch's smaller last step gets a
    call of its own and `n` = 1 is one call per step."""
    size, current = 0, 0
    for count in counts:
        if size and (count != current or size == n):
            yield size, current
            size = 0
        size, current = size + 1, count
    if size:
        yield size, current


LOOPS: dict[str, type[Loop]] = {"fit": FitLoop, "custom": CustomLoop}


class _HookCallback(keras.callbacks.Callback):
    """Passes fit's batch ends to the trainer's progress hook. Keras calls it once per execution
    with the index of the execution's last step, counted as if the execution were full: the
    epoch's last, shorter execution is clamped to the epoch's last step."""

    def __init__(self, hook: StepHook, steps: int) -> None:
        super().__init__()
        self.hook, self.last = hook, steps - 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.hook(min(batch, self.last), lambda: float((logs or {}).get("loss", float("nan"))))


class _StepTimer(keras.callbacks.Callback):
    """Per-step wall times of fit's steps from step `first` on, of `total` steps in all: each
    execution's time (batch begin to batch end) shared equally among the steps it ran."""

    def __init__(self, first: int, total: int) -> None:
        super().__init__()
        self.first, self.total = first, total
        self.times: list[float] = []
        self._start, self._begin = 0.0, 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._begin, self._start = batch, clock()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        elapsed = clock() - self._start
        if self._begin >= self.first:
            ran = min(batch + 1, self.total) - self._begin
            self.times += [elapsed / ran] * ran
