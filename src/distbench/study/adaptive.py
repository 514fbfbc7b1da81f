"""`--repeats auto`: add interleaved rounds until every cell's median is known well enough.

Command: distbench compare --repeats auto --target-ci 5% --max-repeats 10 --time-budget 20m

After the first rounds, each cell's 95% bootstrap interval of its median training time is
computed from its successful runs; while the widest relative half-width is above the target, one
more round of every cell (interleaved, as all rounds are) is run. It stops at the target, at
`--max-repeats` rounds, or when the next round would not fit in `--time-budget`, and the reason
is saved in compare.json, so a resumed study continues from the same state.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from distbench.report.stats import median_interval
from distbench.system.timing import median

FIRST_ROUNDS = 3  # an interval needs a few runs before it says anything


@dataclass(frozen=True)
class AutoRepeats:
    target_ci: float = 0.05  # relative half-width of each cell's 95% interval
    max_repeats: int = 10
    time_budget_s: float | None = None  # the whole compare session, None: no limit


def widest(times: Mapping[Hashable, Sequence[float]]) -> tuple[Hashable | None, float]:
    """The cell whose median is least certain, and its relative half-width (inf below 2 runs).
    Cells without a successful run are left out: more rounds will not make them converge."""
    worst, width = None, 0.0
    for cell, values in times.items():
        if not values:
            continue
        ci = median_interval(values)
        w = ci.half_width_rel(median(values)) if ci else float("inf")
        if worst is None or w > width:
            worst, width = cell, w
    return worst, width


def stop_reason(auto: AutoRepeats, rounds: int, width: float, elapsed_s: float,
                round_s: float) -> str | None:
    """Why no further round is run, or None to run one more."""
    if width <= auto.target_ci:
        return f"every cell's 95% interval is within ±{auto.target_ci:.1%} (widest ±{width:.1%})"
    if rounds >= auto.max_repeats:
        return (f"--max-repeats {auto.max_repeats} reached with the widest interval at "
                f"±{width:.1%} (target ±{auto.target_ci:.1%})")
    if auto.time_budget_s is not None and elapsed_s + round_s > auto.time_budget_s:
        return (f"another round (about {round_s:.0f} s) would exceed --time-budget "
                f"{auto.time_budget_s:.0f} s; widest interval ±{width:.1%}")
    return None
