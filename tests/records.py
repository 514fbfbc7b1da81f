"""Hand-made run records for analysis and report tests: only the keys the schema promises."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count()


def rec(strategy: str = "single", workers: int = 1, train_s: float | None = 10.0,
        status: str = "ok", error: str | None = None, acc: float | None = 0.9,
        comm_s: float | None = 0.0, threads: int | None = None, host: str = "box",
        cores: int = 2, target: float | None = None, ttt: float | None = None,
        history: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """One record; a failed one keeps the same keys with the measurements null."""
    n = next(_ids)
    ok = status == "ok"
    threads = threads if threads is not None else max(1, cores // workers)
    record: dict[str, Any] = {
        "schema_version": 1, "run_id": f"run{n:05d}",
        "started_at": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
        "status": status, "error": error, "strategy": strategy,
        "framework": "tensorflow" if strategy.startswith("tf-") else "pytorch",
        "workers": workers, "threads_per_worker": threads, "dataset": "mnist-5k",
        "model": "mlp-128", "epochs": 2, "global_batch": 64, "lr": 0.001, "optimizer": "adam",
        "seed": 0, "scaling": "strong",
        "train_s": train_s if ok else None,
        "samples_per_s": 8000 / train_s if ok and train_s else None,
        "comm_s": comm_s if ok else None,
        "comm_fraction": comm_s / train_s if ok and comm_s is not None and train_s else None,
        "comm_method": "calibration" if workers > 1 else "none: one process",
        "test_accuracy": acc if ok else None, "startup_s": 1.0 if ok else None,
        "data_s": 0.1 if ok else None,
        "history": (history if history is not None else
                    [{"epoch": 1, "time_s": train_s / 2, "test_accuracy": (acc or 0) - 0.05},
                     {"epoch": 2, "time_s": train_s, "test_accuracy": acc}] if ok else []),
        "time_to_target_s": ttt if ok else None,
        "config": {"batch_size": 64, "device": "cpu", "warmup_steps": 5,
                   "target_accuracy": target, "scaling": "strong"},
        "env": {"host": host, "cores": cores, "cpu": "test cpu", "python": "3.11"},
    }
    record.update(extra)
    return record


def study_records() -> list[dict[str, Any]]:
    """A small study: baseline, ddp at 1 and 2 workers, a failing mpi cell, a TF pair."""
    out = []
    for t in (10.0, 12.0, 11.0):
        out.append(rec("single", 1, t))
    for t in (9.0, 10.0, 11.0):
        out.append(rec("ddp", 1, t, comm_s=0.5))
    for t in (5.0, 6.0, 7.0):
        out.append(rec("ddp", 2, t, comm_s=1.5))
    for _ in range(3):
        out.append(rec("mpi", 2, status="failed", error="rank 1 exited with code 1: boom"))
    for t in (20.0, 22.0):
        out.append(rec("tf-single", 1, t))
    for t in (15.0, 16.0):
        out.append(rec("tf-mirrored", 2, t, comm_s=None))
    return out
