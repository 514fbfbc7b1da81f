"""Clocks and statistics used by every strategy the same way."""

from __future__ import annotations

import os
import resource
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

clock = time.perf_counter  # monotonic, highest resolution; the one clock for train time


def median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def iqr(values: Sequence[float]) -> tuple[float, float]:
    """(25th, 75th) percentiles, linear interpolation as numpy's default."""
    if not len(values):
        return float("nan"), float("nan")
    q1, q3 = np.percentile(values, [25, 75])
    return float(q1), float(q3)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def rank_row(
    rank: int, threads: int, epoch_s: list[float], comm_s: float | None
) -> dict[str, Any]:
    """What one rank reports about its own training, for `summarize_ranks`."""
    return {"rank": rank, "pid": os.getpid(), "host": socket.gethostname(), "threads": threads,
            "train_s": sum(epoch_s), "epoch_s": epoch_s, "comm_s": comm_s,
            "peak_rss_mb": peak_rss_mb()}


def summarize_ranks(
    ranks: list[dict[str, Any]],
    history: list[dict[str, Any]],
    samples_per_epoch: int,
    target_accuracy: float | None,
) -> dict[str, Any]:
    """The record's timing and accuracy fields from every rank's row (DESIGN §3): train time is
    the slowest rank's, throughput counts global samples over it, comm is the ranks' mean
    (None where it was not measured: never a made-up zero)."""
    train_s = max(r["train_s"] for r in ranks)
    comms = [r["comm_s"] for r in ranks]
    comm_s = None if None in comms else float(np.mean(comms))
    epochs = len(history)
    reached = [h["time_s"] for h in history
               if target_accuracy is not None and h["test_accuracy"] >= target_accuracy]
    return {
        "train_s": train_s,
        "epoch_s": [max(r["epoch_s"][e] for r in ranks) for e in range(epochs)],
        "per_rank_train_s": [r["train_s"] for r in ranks],
        "per_rank_comm_s": [r["comm_s"] for r in ranks],
        "peak_rss_mb": [r["peak_rss_mb"] for r in ranks],
        "workers_info": [{k: r[k] for k in ("rank", "pid", "host", "threads")} for r in ranks],
        "samples_per_s": samples_per_epoch * epochs / train_s,
        "comm_s": comm_s,
        "comm_fraction": comm_s / train_s if train_s and comm_s is not None else None,
        "test_accuracy": history[-1]["test_accuracy"],
        "test_loss": history[-1]["test_loss"],
        "history": history,
        "time_to_target_s": reached[0] if reached else None,
    }
