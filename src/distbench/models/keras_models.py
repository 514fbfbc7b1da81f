"""The Keras versions of the named models, layer for layer the same as `torch_models.py`.

Command: python -c "from distbench.models.keras_models import summary; print(summary('cnn'))"

Inputs are NHWC (Keras' layout); the trainer transposes the NCHW arrays once. Like the PyTorch
models, every model starts with the dataset's per-channel normalisation (and an optional resize),
so training, evaluation and inference all feed raw [0, 1] pixels.

Dense and convolution layers use PyTorch's default initialisation (weights and biases uniform in
+-1/sqrt(fan_in)) instead of Keras' Glorot default, so a TF row and a PyTorch row start from the
same weight distribution and differ only in the framework. `mobilenet_v2` is
`keras.applications.MobileNetV2` without its top, followed by torchvision's head (global average
pooling, dropout 0.2, dense); it is built on the preprocessed tensor, which is what lets it run
on 28x28 inputs as the PyTorch version does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from distbench.core.config import ModelConfig
from distbench.core.errors import DistbenchError, unknown_name
from distbench.models import MLP_LAYOUTS, MODEL_NAMES
from distbench.models.user import (
    ModelSpec,
    call_factory,
    check_dummy_batch,
    check_trainable,
    is_user_model,
    parse_spec,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402 - the two variables above must be set before keras loads
from keras import layers  # noqa: E402


def _torch_init(fan_in: int) -> dict[str, Any]:
    """PyTorch's default Linear/Conv initialisation: kaiming_uniform(a=sqrt(5)) for the weights,
    which is uniform(+-1/sqrt(fan_in)), and the same bound for the biases."""
    bound = 1.0 / math.sqrt(fan_in)
    return {
        "kernel_initializer": keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
        "bias_initializer": keras.initializers.RandomUniform(-bound, bound),
    }


def dense(units: int, fan_in: int, activation: str | None = None) -> layers.Dense:
    return layers.Dense(units, activation=activation, **_torch_init(fan_in))


def conv(filters: int, channels: int) -> layers.Conv2D:
    return layers.Conv2D(filters, 3, padding="same", activation="relu",
                         **_torch_init(channels * 9))


def mlp(x: Any, widths: list[int], dropout: float) -> Any:
    """Flatten, then Dense+ReLU(+Dropout) per hidden width, then the output layer."""
    x = layers.Flatten()(x)
    for fan_in, fan_out in zip(widths[:-2], widths[1:-1], strict=True):
        x = dense(fan_out, fan_in, "relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return dense(widths[-1], widths[-2])(x)


def cnn(x: Any, channels: int, size: int, classes: int) -> Any:
    """Two conv blocks and two dense layers, as `torch_models.cnn`."""
    x = layers.MaxPooling2D(2)(conv(32, channels)(x))
    x = layers.MaxPooling2D(2)(conv(64, 32)(x))
    x = layers.Flatten()(x)
    x = dense(128, 64 * (size // 4) ** 2, "relu")(x)
    return dense(classes, 128)(x)


def mobilenet_v2(x: Any, channels: int, classes: int, pretrained: bool) -> Any:
    """keras.applications' MobileNetV2 body with torchvision's classifier head."""
    if pretrained and channels == 1:
        # ImageNet kernels expect RGB; repeating the grey channel equals summing the kernels,
        # which is what the PyTorch version does.
        x = layers.Concatenate()([x, x, x])
    try:
        body = keras.applications.MobileNetV2(
            input_tensor=x, include_top=False, weights="imagenet" if pretrained else None,
            pooling="avg",
        )
    except Exception as exc:  # noqa: BLE001 - any fetch failure means "not available here"
        if not pretrained:
            raise
        raise DistbenchError(
            f"--pretrained: cannot load Keras' MobileNetV2 ImageNet weights "
            f"({type(exc).__name__}: offline?); run without --pretrained"
        ) from None
    y = layers.Dropout(0.2)(body.output)
    return layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(0, 0.01),
                        bias_initializer="zeros")(y)


def _mlp_builder(hidden: tuple[int, ...], dropout: float) -> Callable[..., Any]:
    return lambda x, c, s, k, p: mlp(x, [c * s * s, *hidden, k], dropout=dropout)


BUILDERS: dict[str, Callable[[Any, int, int, int, bool], Any]] = {
    **{name: _mlp_builder(*layout) for name, layout in MLP_LAYOUTS.items()},
    "cnn": lambda x, c, s, k, p: cnn(x, c, s, k),
    "mobilenet_v2": lambda x, c, s, k, p: mobilenet_v2(x, c, k, p),
}
assert tuple(BUILDERS) == MODEL_NAMES


def build_keras_model(
    cfg: ModelConfig,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: list[float],
    std: list[float],
    seed: int = 0,
) -> keras.Model:
    """A freshly initialised model taking NHWC pixels in [0, 1] and returning logits.

    `input_shape` is the dataset's (C, H, W), as for `torch_models.build_model`. The same seed
    gives the same weights in every process; call it inside a `tf.distribute` scope to get
    distributed variables.
    """
    user = is_user_model(cfg.name)
    if not user and cfg.name not in BUILDERS:
        raise unknown_name("model", cfg.name, MODEL_NAMES)
    channels, height, width = input_shape
    if not user and cfg.image_size is None and height != width:
        raise DistbenchError(f"model {cfg.name} needs square images, got {height}x{width}")
    if cfg.pretrained and cfg.name != "mobilenet_v2":
        raise DistbenchError(f"--pretrained is only available for mobilenet_v2, not {cfg.name}")
    size = cfg.image_size or height
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((height, width, channels), name="pixels")
    x = layers.Normalization(axis=-1, mean=mean, variance=[s * s for s in std])(inputs)
    if cfg.image_size is not None and cfg.image_size != width:
        x = layers.Resizing(size, size, interpolation="bilinear")(x)
    if user:
        body = _user_model(parse_spec(cfg.name), (channels, height, width) if cfg.image_size is
                           None else (channels, size, size), num_classes)
        return keras.Model(inputs, body(x), name="user_model")
    outputs = BUILDERS[cfg.name](x, channels, size, num_classes, cfg.pretrained)
    return keras.Model(inputs, outputs, name=cfg.name.replace("-", "_"))


def _user_model(spec: ModelSpec, shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The user's network (NHWC input), checked on one dummy batch before it is wired in; the
    caller has seeded Keras."""
    channels, height, width = shape
    body = call_factory(spec, shape, num_classes, "tf", keras.Model, "keras.Model")
    batch = (2, height, width, channels)
    check_dummy_batch(spec, lambda: body(keras.ops.zeros(batch), training=False), batch,
                      num_classes, " (NHWC)")
    check_trainable(spec, body, "keras.Model")  # built now, by the dummy batch
    return body


def summary(name: str, input_shape: tuple[int, int, int] = (1, 28, 28), classes: int = 10) -> str:
    """Layer table and parameter count of one model (for a quick look from the shell)."""
    channels = input_shape[0]
    model = build_keras_model(ModelConfig(name), input_shape, classes, [0.5] * channels,
                              [0.25] * channels)
    lines: list[str] = []
    model.summary(print_fn=lambda line, *_, **__: lines.append(line))
    return "\n".join(lines)
