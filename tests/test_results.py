"""The run record (DESIGN §5): complete keys, atomic appends, readable by pandas.

Command: python -m pytest tests/test_results.py

Reports, plots and comparisons are derived from these files only, so a missing key or a torn line
would silently break every later view of a study.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from distbench.core.config import RunConfig
from distbench.results.records import (
    RUNS_FILE,
    SCHEMA_VERSION,
    append_record,
    load_records,
    make_record,
)

# DESIGN §5, verbatim: every record carries these keys (nested ones checked where they are lists).
RECORD_KEYS = (
    "schema_version run_id started_at status error strategy framework workers threads_per_worker "
    "backend dataset model epochs global_batch lr optimizer seed scaling train_s epoch_s "
    "startup_s data_s per_rank_train_s workers_info samples_per_s comm_s comm_fraction "
    "test_accuracy test_loss history time_to_target_s peak_rss_mb env"
).split()
WORKER_KEYS = {"rank", "pid", "host", "threads"}
HISTORY_KEYS = {"epoch", "time_s", "train_loss", "test_accuracy"}
ENV_KEYS = set("host cpu cores memory_gb gpus os python torch tensorflow mpi4py mpi_library "
               "git_commit network_interfaces scheduler".split())


def assert_schema(record: dict[str, Any]) -> None:
    """Shared with the CLI smoke test: the keys every consumer of runs.jsonl may rely on."""
    missing = [k for k in RECORD_KEYS if k not in record]
    assert not missing, f"record lacks {missing}"
    assert ENV_KEYS <= record["env"].keys(), ENV_KEYS - record["env"].keys()
    for worker in record["workers_info"]:
        assert WORKER_KEYS <= worker.keys()
    for entry in record["history"]:
        assert HISTORY_KEYS <= entry.keys()
    started = datetime.fromisoformat(record["started_at"])
    assert started.utcoffset() == timedelta(0), "started_at must be UTC"


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
