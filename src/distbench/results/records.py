"""The run record (DESIGN §5): building, appending and loading.

`runs.jsonl` holds one JSON object per line. Several processes may append to one file at once
(runs started together with the same `--out`): each append is one `write` of one complete line,
in append mode, under an exclusive `flock`, then `fsync`ed. A writer never reads the records, so
appending costs the same however long the file is. A failed write is cut back off the file; a
line that a crash left incomplete is closed with a newline by the next writer. Readers skip any
line that is not a record, with one warning per file naming the line numbers.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError, DistbenchWarning
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
        "model_params": None,
        "model_sha256": None,  # a user model's file (--model path.py:fn or pkg.mod:fn)
        "input_shape": None,
        "classes": None,
        "train_samples": None,
        "test_samples": None,
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


class CorruptRecordsWarning(DistbenchWarning):
    """Lines of a runs.jsonl that are not records were skipped; the message names them."""


def append_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Append one record to `<out_dir>/runs.jsonl` as one complete line (see the module doc).

    A failed write (a full disk) leaves the file as it was and raises a one-line
    `DistbenchError`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUNS_FILE
    line = json.dumps(record, sort_keys=True, default=str).encode() + b"\n"
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise DistbenchError(f"{path}: cannot open for the run record ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        _append_line(fd, path, line)
    finally:
        os.close(fd)
    return path


def _append_line(fd: int, path: Path, line: bytes) -> None:
    """One write under the lock; on failure the file is cut back to its previous length."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        line = b"\n" + line  # close a line a crash left unfinished: it stays one bad line
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, f"only {written} of {len(line)} bytes written; the "
                          "disk may be full")
        os.fsync(fd)
    except OSError as exc:
        os.ftruncate(fd, size)
        reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
        raise DistbenchError(f"{path}: cannot append the run record ({reason}); the file is "
                             "unchanged") from None


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a runs.jsonl file or a results directory holding one.

    Lines that are not JSON objects (a line cut short by a crash, a stray edit) are skipped with
    one `CorruptRecordsWarning` naming their line numbers, so one bad line costs only itself.
    """
    p = Path(path)
    if p.is_dir():
        p = p / RUNS_FILE
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    for number, line in enumerate(p.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # not JSON, or not UTF-8
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(number)
    if bad:
        lines = ", ".join(str(n) for n in bad[:10]) + (f" and {len(bad) - 10} more"
                                                        if len(bad) > 10 else "")
        warnings.warn(f"{p}: skipped {len(bad)} line(s) that are not run records "
                      f"(line {lines})", CorruptRecordsWarning, stacklevel=2)
    return records
