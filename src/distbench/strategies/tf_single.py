"""`tf-single`: Keras' `model.fit` in one process on all cores, the TensorFlow baseline.

Command: distbench run --strategy tf-single --dataset fashion-mnist --model mlp-128 --epochs 10
"""

from __future__ import annotations

from distbench.strategies.tf_base import TFStrategy


class TFSingleStrategy(TFStrategy):
    name = "tf-single"
    comm_method = "none: one process"
