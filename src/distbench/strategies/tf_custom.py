"""`tf-custom`: MirroredStrategy driven by a hand-written `tf.function` training step.

Command: distbench run --strategy tf-custom --workers 2 --dataset fashion-mnist --model mlp-128

The replicas and devices are those of `tf-mirrored`; only the loop differs. The batches come from
`strategy.experimental_distribute_dataset`; `distributed_train_step` (compiled in a `tf.function`
that runs `--tf-steps-per-execution` of them per call) calls `strategy.run` on each replica's
slice, each replica's summed loss is divided by the samples of the whole global step
(`tf.nn.compute_average_loss`), the optimizer sums the replicas' gradients, and `strategy.reduce`
returns the step's loss (see `distbench.tf_loops.CustomLoop`).
"""

from __future__ import annotations

from distbench.strategies.tf_mirrored import TFMirroredStrategy


class TFCustomStrategy(TFMirroredStrategy):
    name = "tf-custom"
    loop = "custom"
