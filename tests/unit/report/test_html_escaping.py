"""report.html treats records as untrusted: no record text can open a tag or leave an attribute.

Command: python -m pytest tests/unit/report/test_html_escaping.py
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from distbench.core.config import RunConfig
from distbench.report import build_report
from distbench.results.records import RUNS_FILE, CorruptRecordsWarning, make_record

HOSTILE = "\"><script>alert(1)</script>'<img src=x onerror=alert(2)>&amp;"
# Every attribute the page itself writes; anything else came out of a record.
PAGE_ATTRIBUTES = {"lang", "charset", "name", "content", "class", "alt", "src"}


def hostile(value: Any) -> Any:
    """`value` with every string in it, at any depth, replaced by the payload."""
    if isinstance(value, str):
        return HOSTILE
    if isinstance(value, dict):
        return {k: hostile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [hostile(v) for v in value]
    return value


def measured_record(strategy: str, workers: int, train_s: float) -> dict[str, Any]:
    return make_record(RunConfig(strategy=strategy, workers=workers), measured={
        "train_s": train_s, "samples_per_s": 1000 / train_s, "test_accuracy": 0.9,
        "comm_s": 0.1, "comm_fraction": 0.1 / train_s, "comm_method": "timed collectives",
        "startup_s": 1.0, "data_s": 0.1, "epoch_s": [train_s], "per_rank_train_s": [train_s],
        "workers_info": [{"rank": r, "pid": 1, "host": "box", "threads": 1}
                         for r in range(workers)],
        "history": [{"epoch": 1, "time_s": train_s, "train_loss": 0.5, "test_accuracy": 0.9}],
        "data_note": "a note", "compile_note": "a note",
    })


def hostile_records() -> list[dict[str, Any]]:
    """Successful and failed runs whose every text is the payload; the status stays readable in
    some, so the successful-run tables are built too, and is hostile in the others (which the
    reader skips)."""
    kept_status = []
    for strategy, workers, t in [("single", 1, 10.0), ("single", 1, 11.0), ("ddp", 2, 6.0)]:
        record = hostile(measured_record(strategy, workers, t))
        kept_status.append({**record, "status": "ok"})
    failed = make_record(RunConfig(strategy="mpi", workers=2), "failed", "rank 1: boom")
    fully_hostile = [hostile(measured_record("custom", 2, 7.0)), hostile(failed)]
    records = kept_status + [{**hostile(failed), "status": "failed"}] + fully_hostile
    # Runs are told apart by their id; a hostile one each.
    return [{**r, "run_id": f"{HOSTILE}{i}"} for i, r in enumerate(records)]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_no_record_text_becomes_markup(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    records = hostile_records()
    (runs / RUNS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    (runs / "compare.json").write_text(json.dumps(
        {"sessions": [{"command": HOSTILE}], "equivalent": HOSTILE}))
    # A hostile status is no run record: those lines are skipped with the one warning.
    with pytest.warns(CorruptRecordsWarning, match=r"skipped 2 line\(s\)"):
        build_report([runs], runs, plots=False)
    page = (runs / "report.html").read_text()

    assert "<script" not in page.lower() and "<img" not in page.lower()
    parser = Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag != "script" and {name for name, _ in attrs} <= PAGE_ATTRIBUTES, (tag, attrs)
    # The payload is shown whole, as text: escaped, not dropped.
    assert HOSTILE in "".join(parser.text)
    assert not any(("class", HOSTILE) in attrs for _, attrs in parser.tags)
