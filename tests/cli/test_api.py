"""`distbench.run()` from Python, for real: a tiny run of a model defined right here, its frame,
its record, and a factory that fails in the worker.

Command: python -m pytest tests/cli/test_api.py

The factory lives in this test file, which the worker processes cannot import: it reaches them
only by value, as a notebook's function would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import distbench
from distbench.core.errors import DistbenchError
from distbench.models.user import parse_spec, sha256_of
from distbench.results.records import load_records

from helpers import assert_schema

TINY = {"strategy": "single", "dataset": "synthetic", "synthetic_samples": 64,
        "batch_size": 16, "epochs": 1, "warmup_steps": 1, "calibration_steps": 0,
        "no_progress": True}
HIDDEN = 8


def tiny_factory(input_shape, num_classes, framework):
    from torch import nn

    channels, height, width = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, num_classes))


def broken_factory(input_shape, num_classes, framework):
    raise ValueError(f"no layer fits {input_shape}")


def diverging_factory(input_shape, num_classes, framework):
    """Passes the check on one dummy batch, then fails in training."""
    from torch import nn

    class Diverging(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(int(np.prod(input_shape)), num_classes)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("the loss diverged")
            return self.linear(x.flatten(1))

    return Diverging()


def test_a_run_of_a_model_defined_here(tmp_path: Path) -> None:
    out = tmp_path / "out"
    frame = distbench.run(**TINY, model=tiny_factory, out=out)
    (record,) = load_records(out)
    assert_schema(record)
    assert record["status"] == "ok" and record["test_accuracy"] is not None
    assert len(frame) == 1 and frame.loc[0, "run_id"] == record["run_id"]
    assert frame.loc[0, "train_s"] == record["train_s"]
    assert frame.attrs["out"] == str(out) and frame.distbench.out == out
    spec = parse_spec(record["model"])
    assert spec.function == "tiny_factory" and spec.path is not None
    assert spec.path.parent == out / "model-code"
    assert spec.path.name == f"tiny_factory-{sha256_of(spec)[:12]}.py"
    # The view of the folder: one cell, its plots.
    view = frame.distbench.report()
    assert list(view.summary["strategy"]) == ["single"] and "train_time" in view.figures


def test_a_factory_that_fails_in_the_worker_raises_its_own_line(tmp_path: Path) -> None:
    """The worker refuses the model on its dummy batch: a usage error, and like any refused
    run it leaves nothing, not even the shipped code."""
    out = tmp_path / "out"
    with pytest.raises(DistbenchError) as caught:
        distbench.run(**TINY, model=broken_factory, out=out)
    assert caught.value.exit_code == distbench.api.UsageError.exit_code
    message = str(caught.value)
    assert "ValueError: no layer fits (1, 28, 28)" in message and "\n" not in message, message
    assert not out.exists()


def test_a_run_that_fails_is_recorded_and_keeps_its_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DistbenchError, match="the loss diverged"):
        distbench.run(**TINY, model=diverging_factory, out=out)
    (record,) = load_records(out)
    assert record["status"] == "failed" and "the loss diverged" in record["error"]
    assert parse_spec(record["model"]).path.is_file()


def test_bad_settings_leave_no_results_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(distbench.api.UsageError, match="--batch-size 15 is the global batch"):
        distbench.run(**{**TINY, "batch_size": 15, "workers": 2, "strategy": "ddp"},
                      model=tiny_factory, out=out)
    assert not out.exists()
