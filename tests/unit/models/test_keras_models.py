"""The Keras models are the PyTorch ones: same trainable parameters per model and input shape.

Command: python -m pytest tests/unit/models/test_keras_models.py
(TensorFlow runs in a subprocess; see `keras_side` in tests/conftest.py.)
"""

from __future__ import annotations


def test_keras_models_have_the_pytorch_architectures(keras_side):
    """Same trainable parameter count per model and input shape, logits for 10 classes."""
    for name, (keras_params, torch_params, shape) in keras_side["models"].items():
        assert keras_params == torch_params, name
        assert shape == [2, 10], name
