"""`tf-single`: Keras' `model.fit` in one process on all cores, the TensorFlow baseline.

Command: distbench run --strategy tf-single --dataset fashion-mnist --model mlp-128 --epochs 10
"""

from __future__ import annotations

from distbench.errors import UsageError
from distbench.strategies.tf_base import TFStrategy


class TFSingleStrategy(TFStrategy):
    name = "tf-single"
    comm_method = "none: one process"

    def setup(self) -> None:
        if self.cfg.workers != 1:
            raise UsageError(f"tf-single is one process with one replica; got --workers "
                             f"{self.cfg.workers} (use tf-mirrored or tf-multiworker)")
        super().setup()
