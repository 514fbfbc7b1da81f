"""A user model for the tests: a small conv net in both frameworks, built the way a user would.

The same file serves PyTorch and TensorFlow rows (the `framework` argument picks), as the user
model contract asks; it has BatchNorm-free layers so parity with `single` is exact to float
tolerance.
"""


def build(input_shape, num_classes, framework):
    channels, height, width = input_shape
    if framework == "torch":
        from torch import nn

        return nn.Sequential(
            nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(4 * (height // 2) * (width // 2), num_classes))
    import keras

    return keras.Sequential([
        keras.Input((height, width, channels)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(num_classes)])


def torch_only(input_shape, num_classes, framework):
    if framework != "torch":
        raise ValueError(f"this model is PyTorch only, not {framework}")
    return build(input_shape, num_classes, framework)


def wrong_type(input_shape, num_classes, framework):
    return "not a model"


def wrong_logits(input_shape, num_classes, framework):
    return build(input_shape, num_classes + 1, framework)


def one_row(input_shape, num_classes, framework):
    """Logits for the first sample only: the batch size changes."""
    from torch import nn

    class OneRow(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], num_classes)

        def forward(self, x):
            return self.linear(x.flatten(1))[:1]

    return OneRow()


def integer_logits(input_shape, num_classes, framework):
    """Rounded logits, of an integer dtype."""
    from torch import nn

    class Rounded(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = build(input_shape, num_classes, framework)

        def forward(self, x):
            return self.net(x).long()

    return Rounded()


def no_parameters(input_shape, num_classes, framework):
    """Nothing to train: the optimizer would refuse it."""
    from torch import nn

    return nn.Flatten()


def no_weights_until_called(input_shape, num_classes, framework):
    """Keras: a subclassed model, built by its first call, that holds no weights even then."""
    import keras

    class Averages(keras.Model):
        def call(self, x, training=False):
            return keras.ops.repeat(keras.ops.mean(x, axis=(1, 2))[:, :1], num_classes, axis=1)

    return Averages()
