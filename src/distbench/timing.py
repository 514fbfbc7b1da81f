"""Clocks and statistics used by every strategy the same way."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence

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
