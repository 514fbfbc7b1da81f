"""Named model architectures, defined once per framework with the same layers."""

MODEL_NAMES = ("mlp-128", "mlp-512", "mlp-25", "cnn", "mobilenet_v2")
