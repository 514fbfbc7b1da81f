"""The Keras `--compile` (XLA) fallback: only XLA's compilation errors make a run go on without
XLA; any other error fails it.

Command: python -m pytest tests/unit/training/test_keras_compile.py

TensorFlow never loads in the pytest process (see tests/test_tf_strategies.py): the checks run in
`keras_compile_probe.py`, a subprocess.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import needs_tf, probe_result

PROBE = Path(__file__).resolve().parent / "keras_compile_probe.py"

pytestmark = needs_tf


@pytest.fixture(scope="module")
def probe() -> dict:
    return probe_result(PROBE)


def test_only_xla_compilation_errors_count(probe: dict) -> None:
    classified = probe["classified"]
    assert classified["tf2xla"] == ("InvalidArgumentError: Only compiling NCCL/auto collective "
                                    "is supported, got: ring")
    assert classified["peer gone"] is None
    assert classified["bad input"] is None
    assert classified["not tf"] is None


def test_xla_that_cannot_compile_falls_back_with_a_note(probe: dict) -> None:
    """Mirrored replicas on logical CPU devices: XLA refuses variables of other devices."""
    assert probe["real"]["xla"] is False
    note = probe["real"]["note"]
    assert note.startswith("--compile (XLA) unavailable here (InvalidArgumentError: ")
    assert note.endswith("ran without XLA") and "rank" not in note


def test_a_peer_gone_during_the_trial_fails_the_run(probe: dict) -> None:
    assert probe["peer gone"] == {"raised": "UnavailableError"}
