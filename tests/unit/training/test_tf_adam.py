"""The TF rows' Adam calls TensorFlow's fused kernel, once per variable (and replica copy), and
trains what Keras' own Adam trains: the same formula, to float32 rounding.

Command: python -m pytest tests/unit/training/test_tf_adam.py

TensorFlow never loads in the pytest process: the training runs in `tf_adam_probe.py`.
"""

from __future__ import annotations

from pathlib import Path

from helpers import needs_tf, probe_result


@needs_tf
def test_the_fused_kernel_trains_what_keras_adam_trains() -> None:
    result = probe_result(Path(__file__).resolve().parent / "tf_adam_probe.py")
    for setting, copies in (("default", 1), ("mirrored", 2)):
        facts = result[setting]
        assert facts["fused_ops"] == 4 * copies, setting  # two Dense layers' kernels and biases
        assert facts["keras_fused_ops"] == 0, setting  # the reference really is Keras' own ops
        # Weights and slots after 7 steps at lr 0.01: m and v are summed in another order
        # (beta * m + (1 - beta) * g against m + (g - m) * (1 - beta)), a few ulps a step.
        assert facts["max_relative_difference"] < 1e-4, setting
