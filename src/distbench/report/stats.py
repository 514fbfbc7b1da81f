"""Intervals and tests that tell a real difference from the noise of a shared machine.

Command: distbench report results/<timestamp>/   (every table shows these intervals)

- A cell's median training time gets a 95% bootstrap interval (resampling its runs). Plain
  percentile intervals are too narrow for the few runs a study has (about 93% coverage at 10
  runs), so the percentiles are widened by sqrt(n / (n - 1)) on the normal scale: Hesterberg's
  "expanded percentile" interval, which keeps false alarms under 5% at 10 runs.
- A speedup is a ratio of medians; its interval resamples whole *rounds* (compare interleaves
  the cells, A B C A B C ..., so the k-th run of every cell shares the machine's state of round
  k), which keeps the drift that hits both sides of a ratio alike out of the interval.
- Two sets of runs are compared with a two-sided Mann-Whitney U test (`distbench diff`), as
  benchstat does: no normality assumed, robust to the outliers a busy VM produces.

Resampling uses a fixed seed, so the same records always print the same intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 20261202
# The fewest runs for which a distribution-free 95% interval of a median exists: with n runs the
# interval [min, max] covers the median with probability 1 - 2 * 0.5**n, which first reaches
# 95% at n = 6.
MIN_RUNS_FOR_95 = 6


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def half_width_rel(self, centre: float) -> float:
        """Half the width relative to `centre`: the "±x%" a reader takes from it."""
        return (self.high - self.low) / 2 / abs(centre) if centre else float("inf")


def _percentiles(samples: np.ndarray, n: int) -> Interval:
    """The expanded percentile interval of bootstrap `samples` drawn from `n` runs."""
    z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2) * (n / (n - 1)) ** 0.5
    tail = (1 - NormalDist().cdf(z)) * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(low), float(high))


def median_interval(values: Sequence[float]) -> Interval | None:
    """95% bootstrap interval of the median; None below two runs (nothing to resample)."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, data.size, size=(RESAMPLES, data.size))
    return _percentiles(np.median(data[picks], axis=1), data.size)


def ratio_interval(base: Sequence[float], cell: Sequence[float]) -> Interval | None:
    """95% bootstrap interval of median(base) / median(cell), resampling rounds.

    Round k pairs the k-th run of each side; rounds present on one side only are resampled
    independently. None when either side has fewer than two runs."""
    b, c = np.asarray(base, dtype=float), np.asarray(cell, dtype=float)
    if b.size < 2 or c.size < 2:
        return None
    rng = np.random.default_rng(SEED)
    paired = min(b.size, c.size)
    rounds = rng.integers(0, paired, size=(RESAMPLES, paired))
    b_s, c_s = b[:paired][rounds], c[:paired][rounds]
    if b.size > paired:
        b_s = np.concatenate([b_s, rng.choice(b[paired:], (RESAMPLES, b.size - paired))], 1)
    if c.size > paired:
        c_s = np.concatenate([c_s, rng.choice(c[paired:], (RESAMPLES, c.size - paired))], 1)
    return _percentiles(np.median(b_s, axis=1) / np.median(c_s, axis=1), paired)


def mann_whitney_p(old: Sequence[float], new: Sequence[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value; None with fewer than two values on a side."""
    if len(old) < 2 or len(new) < 2:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(old, new, alternative="two-sided").pvalue)
