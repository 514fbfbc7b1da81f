"""A small residual network, for `--model examples/resnet_small.py:build`, in both frameworks.

Command: distbench compare --model examples/resnet_small.py:build --dataset folder:data/my-images

distbench calls `build((C, H, W), num_classes, framework)` with the dataset's input shape and
`"torch"` or `"tf"`, and trains what it returns with cross-entropy over its outputs (logits, no
softmax). Pixels arrive in [0, 1], already normalised by the training set's mean and std; the
input is NCHW for PyTorch and NHWC for Keras. One file serves both frameworks, so the PyTorch and
the TensorFlow rows of one compare train the same architecture (their initial weights come from
each framework's own initialisers, seeded by `--seed`).

The network: a 3x3 stem, then two stages of one basic residual block each (the second halves
the resolution and doubles the width), global average pooling and one linear layer. With the
default width of 16 it has about 20 k parameters: small enough for a laptop CPU on 32x32 images.
"""

from __future__ import annotations

from typing import Any

WIDTH = 16


def build(input_shape: tuple[int, int, int], num_classes: int, framework: str) -> Any:
    if framework == "torch":
        return _torch_net(input_shape[0], num_classes)
    if framework == "tf":
        return _keras_net(input_shape, num_classes)
    raise ValueError(f"unknown framework {framework!r}")


def _torch_net(channels: int, num_classes: int) -> Any:
    from torch import nn

    class Block(nn.Module):
        """conv-bn-relu-conv-bn plus the input (projected when the shape changes), then relu."""

        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = (nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.relu(self.body(x) + self.skip(x))

    return nn.Sequential(
        nn.Conv2d(channels, WIDTH, 3, 1, 1, bias=False), nn.BatchNorm2d(WIDTH), nn.ReLU(),
        Block(WIDTH, WIDTH, 1), Block(WIDTH, 2 * WIDTH, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * WIDTH, num_classes))


def _keras_net(input_shape: tuple[int, int, int], num_classes: int) -> Any:
    import keras
    from keras import layers

    def block(x: Any, cout: int, stride: int) -> Any:
        y = layers.Conv2D(cout, 3, stride, padding="same", use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(cout, 3, padding="same", use_bias=False)(y))
        if stride != 1 or x.shape[-1] != cout:
            x = layers.BatchNormalization()(layers.Conv2D(cout, 1, stride, use_bias=False)(x))
        return layers.ReLU()(layers.Add()([y, x]))

    channels, height, width = input_shape
    inputs = keras.Input((height, width, channels))
    x = layers.Conv2D(WIDTH, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = block(block(x, WIDTH, 1), 2 * WIDTH, 2)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="resnet_small")
