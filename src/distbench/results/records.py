"""The run record (DESIGN §5): building, atomic appends and loading.

`runs.jsonl` holds one JSON object per line. Each append rewrites the file through a temporary
file and `os.replace`, so a reader (or a crash) never sees half a record.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from distbench.core.config import RunConfig
from distbench.strategies import strategy_info
from distbench.system.fingerprint import fingerprint

SCHEMA_VERSION = 1
RUNS_FILE = "runs.jsonl"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_out_dir() -> str:
    return str(Path("results") / datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S"))


def make_record(
    cfg: RunConfig,
    status: str = "ok",
    error: str | None = None,
    measured: dict[str, Any] | None = None,
    started_at: str | None = None,
) -> dict[str, Any]:
    """A complete record; a failed run has the same keys, with the measurements left null."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex[:12],
        "started_at": started_at or utc_now(),
        "status": status,
        "error": error,
        "strategy": cfg.strategy,
        "framework": strategy_info(cfg.strategy).framework.value,
        "workers": cfg.workers,
        "threads_per_worker": cfg.threads_per_worker,
        "backend": cfg.backend,
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "epochs": cfg.epochs,
        "global_batch": cfg.global_batch,
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "seed": cfg.seed,
        "scaling": cfg.scaling,
        "train_s": None,
        "epoch_s": [],
        "startup_s": None,
        "data_s": None,
        "per_rank_train_s": [],
        "workers_info": [],
        "samples_per_s": None,
        "comm_s": None,
        "comm_fraction": None,
        "comm_method": None,
        "test_accuracy": None,
        "test_loss": None,
        "history": [],
        "time_to_target_s": None,
        "peak_rss_mb": [],
        "config": cfg.to_dict(),
        "env": fingerprint(),
    }
    record.update(measured or {})
    return record


def append_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Append one record to `<out_dir>/runs.jsonl` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUNS_FILE
    existing = path.read_bytes() if path.exists() else b""
    if existing and not existing.endswith(b"\n"):
        existing += b"\n"
    line = json.dumps(record, sort_keys=True, default=str).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{RUNS_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(existing + line)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a runs.jsonl file or a results directory holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / RUNS_FILE
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
