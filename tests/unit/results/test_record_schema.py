"""The record schema against values JSON allows but a reader cannot use: each such record is
skipped with the one-line warning, never a traceback later in a report.

Command: python -m pytest tests/unit/results/test_record_schema.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from distbench.results.records import (
    RUNS_FILE,
    SCHEMA_VERSION,
    CorruptRecordsWarning,
    load_records,
    record_problem,
)

from helpers import rec


@pytest.mark.parametrize(("change", "says"), [
    ({"train_s": 10**400}, "train_s is"),  # float() of it overflows
    ({"epochs": -10**400}, "epochs is"),
    ({"peak_rss_mb": [10**400]}, "peak_rss_mb holds"),
    ({"env": {"host": "box", "scheduler": "x"}}, "env.scheduler"),
    ({"env": {"host": "box", "gpus": 1}}, "env.gpus"),
    ({"env": {"host": "box", "gpus": [1]}}, "env.gpus"),
    ({"env": {"host": "box", "memory_gb": "lots"}}, "env.memory_gb"),
    ({"schema_version": SCHEMA_VERSION + 1}, "newer than this distbench reads"),
])
def test_unusable_values_are_a_problem(change: dict[str, Any], says: str) -> None:
    assert says in (record_problem({**rec(), **change}) or "")


def test_usable_values_are_not() -> None:
    assert record_problem(rec(train_s=1e300, epoch_s=[None], test_samples=None,
                              env={"host": "box", "gpus": ["H200"], "scheduler": {}})) is None


def test_json_nested_too_deep_is_one_skipped_line(tmp_path: Path) -> None:
    good = rec()
    (tmp_path / RUNS_FILE).write_text("[" * 100_000 + "]" * 100_000 + "\n"
                                      + json.dumps(good) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_records(tmp_path) == [good]
    assert [w.category for w in caught] == [CorruptRecordsWarning]
    assert "line 1" in str(caught[0].message)
