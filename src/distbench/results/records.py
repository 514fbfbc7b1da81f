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
import sys
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError, DistbenchWarning, UsageError
from distbench.strategies import strategy_info
from distbench.system.fingerprint import fingerprint
from distbench.system.launchenv import RUN_ID_VAR

SCHEMA_VERSION = 1
RUNS_FILE = "runs.jsonl"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_out_dir() -> str:
    return str(Path("results") / datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S"))


def check_out_dir(out: str | Path, flag: str = "--out") -> Path:
    """`out` as a folder to write results into, refused in one line before any work when it, or
    a folder above it, is a file, or when it cannot be written."""
    path = Path(out)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{flag} {out}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {out}: {existing} is not writable")
    return path


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def make_record(
    cfg: RunConfig,
    status: str = "ok",
    error: str | None = None,
    measured: dict[str, Any] | None = None,
    started_at: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A complete record; a failed run has the same keys, with the measurements left null. Its
    id is `run_id`, else the one distbench's launcher gave this worker, else a new one."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or os.environ.get(RUN_ID_VAR) or new_run_id(),
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


# --------------------------------------------------------------------------- the schema
# What a reader may rely on in every record it gets: the three keys that place a run in a table,
# and, for every other key a reader computes with, its type when present (null is always allowed:
# a failed run measured nothing). Hand-made and older records with fewer keys stay readable.
_INT, _NUMBER, _TEXT = "an integer", "a number", "a string"
_BOOL, _OBJECT, _LIST, _TEXTS = "true or false", "an object", "a list", "a list of strings"
_FIELD_TYPES: dict[str, str] = {
    **dict.fromkeys(("run_id", "started_at", "error", "framework", "backend", "dataset", "model",
                     "optimizer", "scaling", "comm_method", "compression", "checkpoint",
                     "model_sha256", "data_note", "compile_note", "threads_note",
                     "optimizer_impl", "optimizer_call", "worker_start", "compiled_step"),
                   _TEXT),
    **dict.fromkeys(("schema_version", "epochs", "global_batch", "threads_per_worker", "seed",
                     "steps", "grad_bytes", "model_params", "classes", "train_samples",
                     "test_samples"), _INT),
    **dict.fromkeys(("lr", "train_s", "startup_s", "data_s", "samples_per_s", "comm_s",
                     "comm_s_calibrated", "comm_fraction", "test_accuracy", "test_loss",
                     "time_to_target_s"), _NUMBER),
    "exact": _BOOL,
    **dict.fromkeys(("config", "env", "machine_state", "sharding", "tf_execution"), _OBJECT),
}
# Lists of numbers (a rank that measured nothing leaves a null), and lists of objects.
_NUMBER_LISTS = ("epoch_s", "per_rank_train_s", "per_rank_comm_s", "peak_rss_mb", "cuda_peak_mb",
                 "model_state_bytes", "wire_bytes", "input_shape")
_OBJECT_LISTS = ("workers_info", "history")
_HISTORY_TYPES = dict.fromkeys(("epoch", "time_s", "train_loss", "test_accuracy", "test_loss"),
                               _NUMBER)
# The config keys the report and the projection compute with.
_CONFIG_TYPES: dict[str, str] = {
    **dict.fromkeys(("batch_size", "epochs", "warmup_steps"), _INT),
    **dict.fromkeys(("lr", "momentum", "bucket_mb", "target_accuracy"), _NUMBER),
    **dict.fromkeys(("device", "optimizer", "scaling", "compression"), _TEXT),
    "overlap": _BOOL,
    **dict.fromkeys(("data", "model"), _OBJECT),
}
# The fingerprint keys the report shows (the machine line, report.html, diff's version check).
_ENV_TYPES: dict[str, str] = {
    **dict.fromkeys(("host", "cpu", "os", "python", "torch", "tensorflow", "mpi4py",
                     "mpi_library", "git_commit", "distbench"), _TEXT),
    "cores": _INT,
    "memory_gb": _NUMBER,
    **dict.fromkeys(("gpus", "network_interfaces"), _TEXTS),
    **dict.fromkeys(("scheduler", "openmp_wait"), _OBJECT),
}
# Every number a reader computes with must become a finite float: JSON allows integers of any
# size, and float() of one above this raises OverflowError.
_LARGEST = sys.float_info.max


def is_number(value: Any) -> bool:
    """A JSON number that converts to a finite float (not NaN, not infinite, not a huge int)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and abs(value) <= _LARGEST)  # NaN compares false


def _is(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and is_number(value)
    if kind == _NUMBER:
        return is_number(value)
    if kind == _TEXTS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, {_TEXT: str, _BOOL: bool, _OBJECT: dict, _LIST: list}[kind])


def _typed(values: dict[str, Any], types: dict[str, str], where: str) -> str | None:
    for key, kind in types.items():
        value = values.get(key)
        if value is not None and not _is(value, kind):
            return f"{where}{key} is {json.dumps(value)[:40]}, not {kind}"
    return None


def record_problem(record: Any) -> str | None:
    """Why `record` is not a run record a reader can use, or None when it is one."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("status") not in ("ok", "failed"):
        return f"status is {json.dumps(record.get('status'))[:40]}, not \"ok\" or \"failed\""
    if not isinstance(record.get("strategy"), str):
        return "no strategy name"
    workers = record.get("workers")
    if not _is(workers, _INT) or workers < 1:
        return f"workers is {json.dumps(workers)[:40]}, not an integer >= 1"
    problem = _typed(record, {**_FIELD_TYPES, **dict.fromkeys(_NUMBER_LISTS + _OBJECT_LISTS,
                                                               _LIST)}, "")
    if problem:
        return problem
    if (record.get("schema_version") or 0) > SCHEMA_VERSION:  # its keys may mean other things
        return (f"schema_version {record['schema_version']} is newer than this distbench reads "
                f"({SCHEMA_VERSION}); upgrade distbench")
    for key in _NUMBER_LISTS:
        if not all(v is None or _is(v, _NUMBER) for v in record.get(key) or []):
            return f"{key} holds an item that is not a number"
    for key in _OBJECT_LISTS:
        if not all(isinstance(v, dict) for v in record.get(key) or []):
            return f"{key} holds an item that is not an object"
    problems = [_typed(entry, _HISTORY_TYPES, "history: ") for entry in record.get("history") or []]
    problems += [_typed(record.get("config") or {}, _CONFIG_TYPES, "config."),
                 _typed(record.get("env") or {}, _ENV_TYPES, "env.")]
    return next((p for p in problems if p), None)


_warned: set[str] = set()


def load_records(path: str | Path, required: bool = False) -> list[dict[str, Any]]:
    """Records from a runs.jsonl file or a results directory holding one.

    Lines that are not records (a line cut short by a crash, a stray edit, a value of the wrong
    type: see `record_problem`) are skipped with one `CorruptRecordsWarning` naming their line
    numbers, so one bad line costs only itself. With `required` (a command that shows the
    records), a file left with no record at all is a one-line `UsageError` instead.
    """
    p = Path(path)
    if p.is_dir():
        p = p / RUNS_FILE
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    problems: list[str] = []  # why, for the lines that are JSON
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            problem = record_problem(record := json.loads(line))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
            bad.append(number)
            continue
        if problem is None:
            records.append(record)
        else:
            bad.append(number)
            problems.append(f"line {number}: {problem}")
    where = ", ".join(str(n) for n in bad[:10]) + (f" and {len(bad) - 10} more"
                                                    if len(bad) > 10 else "")
    where = f"line {where}" if len(bad) > 1 or not problems else ""
    where = "; ".join(w for w in (where, *problems[:1]) if w)
    if required and not records:
        raise UsageError(f"{p} holds no run record" + (f" ({len(bad)} line(s) skipped: {where})"
                                                       if bad else ""))
    message = f"{p}: skipped {len(bad)} line(s) that are not run records ({where})"
    if bad and message not in _warned:  # a process that reads the file again says it once
        _warned.add(message)
        warnings.warn(message, CorruptRecordsWarning, stacklevel=2)
    return records
