"""Named model architectures, defined once per framework with the same layers, and the checkpoint
format. Imports only `core`; each framework module imports its own framework."""

MODEL_NAMES = ("mlp-128", "mlp-512", "mlp-25", "mlp-wide", "cnn", "mobilenet_v2")

# The MLPs, for both frameworks: hidden widths between the flattened input and the classes, and
# the dropout after each hidden layer. One table, so the PyTorch and Keras rows cannot drift.
MLP_LAYOUTS: dict[str, tuple[tuple[int, ...], float]] = {
    "mlp-128": ((128,), 0.2),
    "mlp-512": ((512, 256, 128), 0.2),
    "mlp-25": ((25, 15), 0.0),
    # About 48 M parameters in twelve equal 2048-wide layers: large enough that model state
    # dominates a rank's memory, in tensors of equal size so that ZeRO's per-tensor partition
    # of the optimizer state comes out even (benchmarks/memory.py).
    "mlp-wide": ((2048,) * 12, 0.0),
}
