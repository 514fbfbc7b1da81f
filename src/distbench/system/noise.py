"""How noisy is this machine right now? The spread of a fixed, short compute kernel.

`distbench compare` runs this before its first run and after its last; the report prints the
coefficient of variation (CV) and warns, as pyperf does, when it is high: then differences
smaller than a few times the CV cannot be told from the machine's own jitter.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SAMPLES = 30
WARMUP = 5
NOISY_CV = 0.10  # pyperf warns when the standard deviation exceeds 10% of the mean


def _kernel(a: np.ndarray) -> float:
    """About a millisecond of single-threaded arithmetic, the same every call."""
    return float(np.sqrt(a * a + 1.0).sum())


def measure_noise(samples: int = SAMPLES) -> dict[str, Any]:
    """{'cv', 'mean_s', 'min_s', 'max_s', 'samples'} of `samples` timed kernel calls."""
    a = np.linspace(0.0, 1.0, 200_000)
    for _ in range(WARMUP):
        _kernel(a)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        _kernel(a)
        times.append(time.perf_counter() - start)
    t = np.asarray(times)
    return {"cv": float(t.std() / t.mean()), "mean_s": float(t.mean()), "min_s": float(t.min()),
            "max_s": float(t.max()), "samples": samples}


def noise_warning(cv: float) -> str | None:
    """pyperf-style advice when the machine is too noisy to trust small differences."""
    if cv <= NOISY_CV:
        return None
    return (f"WARNING: this machine is noisy: a fixed compute kernel varied by {cv:.0%} (CV, "
            f"above {NOISY_CV:.0%}). Differences of a few times that cannot be told from "
            "noise. Close other programs (check `uptime`), stop CPU-heavy services, or use more "
            "repeats (--repeats auto).")
