"""`tf-mirrored`: `tf.distribute.MirroredStrategy` with Keras' `model.fit`, N replicas, one process.

Command: distbench run --strategy tf-mirrored --workers 2 --dataset fashion-mnist --model mlp-128

With `--device cuda` the replicas are the first N GPUs (all-reduce by NCCL). On CPU the one
physical CPU is split into N logical devices with `tf.config.set_logical_device_configuration`,
so N replicas really run, each on global batch / N, and share the process's thread pools;
their gradients are summed by `ReductionToOneDevice` (NCCL needs GPUs).
"""

from __future__ import annotations

from typing import Any

from distbench.strategies.tf_base import TFStrategy


class TFMirroredStrategy(TFStrategy):
    name = "tf-mirrored"
    loop = "fit"

    def device_layout(self) -> dict[str, int]:
        if self.cfg.device == "cuda":
            return {"gpus": self.cfg.workers}
        return {"gpus": 0, "logical_cpus": self.cfg.workers}

    def make_distribution(self) -> Any:
        tf = self.tf
        kind = "GPU" if self.cfg.device == "cuda" else "CPU"
        devices = [d.name for d in tf.config.list_logical_devices(kind)][: self.cfg.workers]
        if kind == "GPU":
            ops, self.cross_device = tf.distribute.NcclAllReduce(), "nccl"
        else:
            ops, self.cross_device = tf.distribute.ReductionToOneDevice(), "reduction-to-one-device"
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=ops)
