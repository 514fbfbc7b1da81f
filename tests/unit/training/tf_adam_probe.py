"""The TF rows' Adam (`TorchAdam`, TensorFlow's fused `ResourceApplyAdam` kernel) against Keras'
own Adam, checked where TensorFlow may load: a subprocess of tests/unit/training/test_tf_adam.py.

Command: python tests/unit/training/tf_adam_probe.py   (prints one RESULT JSON line)

Seven steps of the same two-layer model from the same weights on the same batches, with each
optimizer, in one process (default strategy) and as two replicas of a MirroredStrategy over two
logical CPU devices (there the update runs once per replica copy of each variable). Prints, per
setting, the largest difference of the weights and of the optimizer's slots relative to their
scale, and how many `ResourceApplyAdam` ops the traced step holds.
"""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from distbench.training.tf_loops import TorchAdam

STEPS = 7


def train(strategy: tf.distribute.Strategy, optimizer_fn: Any) -> tuple[list[np.ndarray], int]:
    """Weights and slots after STEPS steps, and the count of fused Adam ops in the step."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                                  keras.layers.Dense(3)])
        optimizer = optimizer_fn()
        optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(1)
    batches = [(rng.normal(size=(8, 6)).astype("float32"), rng.integers(0, 3, 8))
               for _ in range(STEPS)]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="sum_over_batch_size")

    def replica_step(x: Any, y: Any) -> None:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True)) / strategy.num_replicas_in_sync
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    @tf.function
    def step(x: Any, y: Any) -> None:
        strategy.run(replica_step, args=(x, y))

    for x, y in batches:
        step(tf.constant(x), tf.constant(y))
    graph = step.get_concrete_function(tf.constant(batches[0][0]),
                                       tf.constant(batches[0][1])).graph.as_graph_def()
    ops = [*(n.op for n in graph.node),
           *(n.op for f in graph.library.function for n in f.node_def)]
    fused = ops.count("ResourceApplyAdam")
    values = [v.numpy() for v in [*model.trainable_variables, *optimizer.variables]]
    return values, fused


def compare(strategy: tf.distribute.Strategy) -> dict[str, Any]:
    ours, fused = train(strategy, lambda: TorchAdam(learning_rate=0.01, epsilon=1e-8))
    keras_own, keras_fused = train(
        strategy, lambda: keras.optimizers.Adam(learning_rate=0.01, epsilon=1e-8))
    differences = [float(np.max(np.abs(a - b)) / max(1e-12, float(np.max(np.abs(b)))))
                   for a, b in zip(ours, keras_own, strict=True)]
    return {"max_relative_difference": max(differences), "fused_ops": fused,
            "keras_fused_ops": keras_fused, "tensors": len(ours)}


def main() -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"default": compare(tf.distribute.get_strategy()), "mirrored": compare(mirrored)}
    print("RESULT" + json.dumps(result))


if __name__ == "__main__":
    main()
