"""The run record (DESIGN §5): complete keys, atomic appends, readable by pandas.

Command: python -m pytest tests/unit/results/test_records.py

Reports, plots and comparisons are derived from these files only, so a missing key or a torn line
would silently break every later view of a study.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distbench.core.config import RunConfig
from distbench.results.records import (
    RUNS_FILE,
    SCHEMA_VERSION,
    append_record,
    load_records,
    make_record,
)

from helpers import RECORD_KEYS, assert_schema


def test_new_record_has_every_key() -> None:
    cfg = RunConfig(epochs=2, batch_size=32)
    record = make_record(cfg)
    assert_schema(record)
    assert record["schema_version"] == SCHEMA_VERSION and record["status"] == "ok"
    assert record["global_batch"] == 32 and record["framework"] == "pytorch"
    assert record["config"]["data"]["name"] == cfg.data.name
    json.dumps(record)  # serialisable as it stands


def test_failed_record_has_the_same_keys() -> None:
    ok, failed = make_record(RunConfig()), make_record(RunConfig(), status="failed", error="boom")
    assert ok.keys() == failed.keys()
    assert failed["error"] == "boom" and failed["test_accuracy"] is None


def test_weak_scaling_global_batch() -> None:
    record = make_record(RunConfig(workers=4, batch_size=16, scaling="weak"))
    assert record["global_batch"] == 64 and record["scaling"] == "weak"


def test_record_framework_comes_from_the_registry() -> None:
    assert make_record(RunConfig(strategy="tf-mirrored"))["framework"] == "tensorflow"
    assert make_record(RunConfig(strategy="ddp"))["framework"] == "pytorch"


def test_run_ids_differ() -> None:
    assert make_record(RunConfig())["run_id"] != make_record(RunConfig())["run_id"]


def test_append_is_atomic_and_readable(tmp_path: Path) -> None:
    out = tmp_path / "results" / "study"
    first = make_record(RunConfig(seed=1), measured={"test_accuracy": 0.5})
    second = make_record(RunConfig(seed=2), measured={"test_accuracy": 0.75})
    path = append_record(out, first)
    assert append_record(out, second) == path == out / RUNS_FILE
    assert sorted(p.name for p in out.iterdir()) == [RUNS_FILE], "temporary file left behind"
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    records = load_records(out)
    assert [r["seed"] for r in records] == [1, 2]
    assert load_records(path) == records


def test_append_repairs_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / RUNS_FILE
    path.write_text(json.dumps({"run_id": "x"}))
    append_record(tmp_path, make_record(RunConfig()))
    assert len(load_records(tmp_path)) == 2


def test_pandas_reads_runs_jsonl(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    for seed in range(3):
        append_record(tmp_path, make_record(RunConfig(seed=seed)))
    frame = pd.read_json(tmp_path / RUNS_FILE, lines=True)
    assert len(frame) == 3 and frame["seed"].tolist() == [0, 1, 2]
    assert set(RECORD_KEYS) <= set(frame.columns)
