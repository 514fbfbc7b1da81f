"""`distbench run` as a user types it: one epoch of mlp-128 on mnist-5k (no download), its summary,
its record, pandas reading it, and the saved model.

Command: python -m pytest tests/cli/test_run.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from safetensors.numpy import load_file

from distbench.results.records import load_records

from helpers import assert_schema, run_cli


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One epoch of mlp-128 on mnist-5k, as a user would type it, with a saved model."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    cache = tmp_path_factory.mktemp("cache")
    proc = run_cli("run", "--dataset", "mnist-5k", "--epochs", "1", "--no-progress",
                   "--save-model", "--out", str(out),
                   env={"DISTBENCH_OFFLINE": "1", "XDG_CACHE_HOME": str(cache)})
    return out, proc



def test_smoke_run_succeeds(smoke_run: tuple[Path, Any]) -> None:
    out, proc = smoke_run
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "test accuracy" in proc.stdout and "samples/s" in proc.stdout
    assert str(out / "runs.jsonl") in proc.stdout.replace("\n", "")



def test_smoke_run_record(smoke_run: tuple[Path, Any]) -> None:
    out, _ = smoke_run
    (record,) = load_records(out)
    assert_schema(record)
    assert record["status"] == "ok" and record["error"] is None
    assert record["strategy"] == "single" and record["dataset"] == "mnist-5k"
    assert record["model"] == "mlp-128" and record["epochs"] == 1 and record["workers"] == 1
    assert record["test_accuracy"] > 0.75, "one epoch on 4,000 digits is far above 10% chance"
    assert record["train_s"] > 0 and record["samples_per_s"] > 0
    assert len(record["epoch_s"]) == 1 and len(record["history"]) == 1
    assert record["history"][0]["test_accuracy"] == record["test_accuracy"]
    assert [w["rank"] for w in record["workers_info"]] == [0]
    assert record["samples_per_s"] == pytest.approx(4000 / record["train_s"])



def test_smoke_run_is_readable_by_pandas(smoke_run: tuple[Path, Any]) -> None:
    pd = pytest.importorskip("pandas")
    out, _ = smoke_run
    frame = pd.read_json(out / "runs.jsonl", lines=True)
    assert len(frame) == 1 and frame.loc[0, "status"] == "ok"



def test_smoke_run_checkpoint(smoke_run: tuple[Path, Any]) -> None:
    out, _ = smoke_run
    meta = json.loads((out / "model.json").read_text())
    for key in ("model", "dataset", "classes", "normalisation", "input_shape"):
        assert key in meta, key
    assert meta["model"] == "mlp-128" and meta["dataset"] == "mnist-5k"
    assert meta["classes"] == [str(i) for i in range(10)]
    assert meta["input_shape"] == [1, 28, 28]
    assert set(meta["normalisation"]) >= {"mean", "std"}
    weights = load_file(str(out / "model.safetensors"))
    assert sorted(weights) == meta["tensors"]
    (record,) = load_records(out)
    assert meta["run_id"] == record["run_id"]
    assert meta["test_accuracy"] == record["test_accuracy"]
