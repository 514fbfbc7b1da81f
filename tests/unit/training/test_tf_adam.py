"""The TF rows' Adam calls TensorFlow's fused kernel, once per variable (and replica copy), and
trains what Keras' own Adam trains: the same formula, to float32 rounding.

Command: python -m pytest tests/unit/training/test_tf_adam.py

TensorFlow never loads in the pytest process: the training runs in `tf_adam_probe.py`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from helpers import probe_result

PROBE = Path(__file__).resolve().parent / "tf_adam_probe.py"
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="TensorFlow not installed (pip install 'distbench[tf]')")


@pytest.fixture(scope="module")
def probe() -> dict:
    return probe_result(PROBE)


@needs_tf
@pytest.mark.parametrize("setting,copies", [("default", 1), ("mirrored", 2)])
def test_the_fused_kernel_trains_what_keras_adam_trains(probe: dict, setting: str,
                                                        copies: int) -> None:
    facts = probe[setting]
    assert facts["fused_ops"] == 4 * copies  # two Dense layers: two kernels, two biases
    assert facts["keras_fused_ops"] == 0  # the reference really is Keras' own ops
    # Weights and slots after 7 steps at lr 0.01: m and v are summed in another order (beta * m
    # + (1 - beta) * g against m + (g - m) * (1 - beta)), a few float32 ulps a step.
    assert facts["max_relative_difference"] < 1e-4
