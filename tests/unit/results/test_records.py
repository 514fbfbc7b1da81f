"""The run record (DESIGN §5): complete keys, atomic appends, readable by pandas.

Command: python -m pytest tests/unit/results/test_records.py

Reports, plots and comparisons are derived from these files only, so a missing key or a torn line
would silently break every later view of a study.
"""

from __future__ import annotations

import json
import subprocess
import sys
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

from helpers import MEASUREMENT_KEYS, RECORD_KEYS, assert_schema


def test_new_record_has_every_key() -> None:
    cfg = RunConfig(epochs=2, batch_size=32)
    record = make_record(cfg)
    assert_schema(record)
    assert record["schema_version"] == SCHEMA_VERSION and record["status"] == "ok"
    assert record["global_batch"] == 32 and record["framework"] == "pytorch"
    assert record["config"]["data"]["name"] == "mnist-5k" and record["config"]["epochs"] == 2
    json.dumps(record)  # serialisable as it stands


def test_failed_record_has_every_key_and_no_measurement() -> None:
    """A failed run is still a complete record (the report lists it), and it claims nothing."""
    failed = make_record(RunConfig(strategy="ddp", workers=2), status="failed", error="boom")
    assert_schema(failed)
    assert (failed["status"], failed["error"]) == ("failed", "boom")
    assert (failed["strategy"], failed["workers"]) == ("ddp", 2)
    assert {k: failed[k] for k in MEASUREMENT_KEYS} == dict.fromkeys(MEASUREMENT_KEYS)
    assert failed["history"] == [] and failed["workers_info"] == []


def test_weak_scaling_global_batch() -> None:
    record = make_record(RunConfig(workers=4, batch_size=16, scaling="weak"))
    assert record["global_batch"] == 64 and record["scaling"] == "weak"


def test_record_framework_comes_from_the_registry() -> None:
    assert make_record(RunConfig(strategy="tf-mirrored"))["framework"] == "tensorflow"
    assert make_record(RunConfig(strategy="ddp"))["framework"] == "pytorch"


def test_run_ids_differ() -> None:
    assert make_record(RunConfig())["run_id"] != make_record(RunConfig())["run_id"]


def test_appends_accumulate_and_read_back(tmp_path: Path) -> None:
    out = tmp_path / "results" / "study"
    first = make_record(RunConfig(seed=1), measured={"test_accuracy": 0.5})
    second = make_record(RunConfig(seed=2), measured={"test_accuracy": 0.75})
    path = append_record(out, first)
    assert append_record(out, second) == path == out / RUNS_FILE
    assert len(path.read_text().splitlines()) == 2
    records = load_records(out)
    assert [(r["seed"], r["test_accuracy"]) for r in records] == [(1, 0.5), (2, 0.75)]
    assert load_records(path) == records


# Appends one large record in a process whose file-size limit stops the write halfway, as a full
# disk or a quota would. The limit applies to every file, so it hits whichever file is written.
HALF_WRITTEN_APPEND = """
import resource, sys
from distbench.core.errors import DistbenchError
from distbench.results.records import append_record
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), hard))
try:
    append_record(sys.argv[1], {"run_id": "big", "padding": "x" * 100_000})
except DistbenchError as exc:
    print("refused:", exc)
"""


def test_an_append_cut_short_leaves_the_earlier_records_whole(tmp_path: Path) -> None:
    """A crash or a full disk in the middle of an append must not tear runs.jsonl: the earlier
    records stay byte for byte, the file still parses, and no stray file is left."""
    for seed in (1, 2):
        append_record(tmp_path, make_record(RunConfig(seed=seed)))
    path = tmp_path / RUNS_FILE
    before = path.read_bytes()
    limit = len(before) + 50  # room for 50 bytes of the new line, not for all of it
    proc = subprocess.run([sys.executable, "-c", HALF_WRITTEN_APPEND, str(tmp_path), str(limit)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:"), "the write was not cut short: " + proc.stdout
    assert path.read_bytes() == before
    assert [r["seed"] for r in load_records(tmp_path)] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUNS_FILE]
    append_record(tmp_path, make_record(RunConfig(seed=3)))  # and the next append works
    assert [r["seed"] for r in load_records(tmp_path)] == [1, 2, 3]


def test_append_repairs_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / RUNS_FILE
    path.write_text(json.dumps(make_record(RunConfig())))
    append_record(tmp_path, make_record(RunConfig()))
    assert len(load_records(tmp_path)) == 2


def test_pandas_reads_runs_jsonl(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    for seed in range(3):
        append_record(tmp_path, make_record(RunConfig(seed=seed)))
    frame = pd.read_json(tmp_path / RUNS_FILE, lines=True)
    assert len(frame) == 3 and frame["seed"].tolist() == [0, 1, 2]
    assert set(RECORD_KEYS) <= set(frame.columns)
