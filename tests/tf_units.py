"""Keras-side facts the tests check without loading TensorFlow into pytest itself.

Command: python tests/tf_units.py   (prints one JSON line)

- models: per model and input shape, the Keras and PyTorch trainable parameter counts and the
  Keras logits' shape;
- pipeline: the index batches `tf_data.InputPipeline` yields for 9 samples, global batch 4, 2
  ranks, epochs 0 and 1, with the shared order and with a tf.data shuffle buffer (twice, to show
  it is deterministic).
"""

from __future__ import annotations

import json

import numpy as np

from distbench.core.config import ModelConfig
from distbench.models.keras_models import build_keras_model
from distbench.models.torch_models import build_model
from distbench.training.tf_data import InputPipeline

MODEL_CASES = [((1, 28, 28), ["mlp-128", "mlp-512", "mlp-25", "cnn", "mobilenet_v2"]),
               ((3, 32, 32), ["mlp-128", "cnn"])]


def models() -> dict[str, list]:
    out = {}
    for shape, names in MODEL_CASES:
        c, h, w = shape
        for name in names:
            keras_model = build_keras_model(ModelConfig(name), shape, 10, [0.5] * c, [0.25] * c)
            torch_model = build_model(ModelConfig(name), shape, 10, [0.5] * c, [0.25] * c)
            logits = keras_model(np.random.rand(2, h, w, c).astype("float32"))
            out[f"{name} {shape}"] = [
                sum(int(np.prod(v.shape)) for v in keras_model.trainable_variables),
                sum(p.numel() for p in torch_model.parameters()), list(logits.shape)]
    return out


def batches(shuffle_buffer: int | None) -> dict[str, list]:
    out = {}
    for rank in range(2):
        pipe = InputPipeline(np.zeros((9, 1, 1, 1), np.float32), np.arange(9), seed=3,
                             rank=rank, world=2, global_batch=4, shuffle_buffer=shuffle_buffer)
        for epoch in range(2):
            out[f"{rank} {epoch}"] = [b.numpy().tolist() for b in pipe.index_batches(epoch)]
    return out


if __name__ == "__main__":
    print("RESULT", json.dumps({"models": models(), "shared": batches(None),
                                "buffer": batches(9), "buffer_again": batches(9)}))
