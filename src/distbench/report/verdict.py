"""The answer in words, generated from the numbers: which strategy is fastest at each worker
count, by how much, with what confidence, which differences are noise, and why.

Command: distbench report results/<timestamp>/   (the "Verdict" at the top of every view)

Nothing here is measured: every sentence is derived from the cell statistics of
`distbench.report.analysis`, so the same records always give the same words.
"""

from __future__ import annotations

from distbench.report.analysis import CellStats, SetupSummary
from distbench.report.stats import MIN_RUNS_FOR_95, ratio_interval


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2g} ms" if seconds < 0.1 else f"{seconds:.3g} s"


def speedup_words(c: CellStats, base: str) -> str:
    """`1.32× single [1.10–1.51]`, or `≈ single (not significant)`, or the bare ratio marked as
    untested when a side ran once."""
    if c.speedup is None:
        return "no speedup (baseline missing)"
    if c.speedup_ci is None:
        return f"{c.speedup:.2f}× {base} (untested: one run)"
    if c.speedup_ci.contains(1.0):
        return f"≈ {base} (not significant: {c.speedup_ci.low:.2f}–{c.speedup_ci.high:.2f}×)"
    return f"{c.speedup:.2f}× {base} [{c.speedup_ci.low:.2f}–{c.speedup_ci.high:.2f}]"


def _against_runner_up(best: CellStats, runner: CellStats) -> str:
    ci = ratio_interval(runner.train_s, best.train_s)
    ratio = (runner.train_median or 0) / (best.train_median or 1)
    name = f"`{runner.strategy}`"
    if ci is None:
        return f"{ratio - 1:.0%} ahead of {name} (untested: one run)"
    if ci.contains(1.0):
        return f"not significantly faster than {name} ({ratio:.2f}×, interval " \
               f"{ci.low:.2f}–{ci.high:.2f}×)"
    return f"{ratio:.2f}× as fast as the next, {name} [{ci.low:.2f}–{ci.high:.2f}]"


def _inexact_words(c: CellStats) -> str:
    """A compressed winner that lost accuracy is no plain win: say what it cost."""
    if c.compression == "none" or c.acc_delta is None or c.acc_delta >= 0:
        return ""
    return (f", but inexact ({c.compression} compression) and {-100 * c.acc_delta:.2f} "
            "accuracy points below its exact twin")


def fastest_lines(s: SetupSummary, base: str) -> list[str]:
    lines = []
    for workers in sorted({c.workers for c in s.cells}):
        ranked = sorted((c for c in s.cells if c.workers == workers and c.train_median),
                        key=lambda c: c.train_median or 0.0)
        if not ranked:
            continue
        best = ranked[0]
        how = "the baseline itself" if best is s.baseline else speedup_words(best, base)
        line = f"{workers} worker{'s' if workers > 1 else ''}: fastest is `{best.strategy}`, {how}"
        line += _inexact_words(best)
        if len(ranked) > 1 and ranked[1] is not s.baseline:
            line += f"; {_against_runner_up(best, ranked[1])}"
        lines.append(line + ".")
    return lines


def _not_significant(s: SetupSummary, base: str) -> str | None:
    same = [f"`{c.strategy}` ×{c.workers}" for c in s.cells
            if c.strategy != base and c.speedup_ci is not None and c.speedup_ci.contains(1.0)]
    if not same:
        return None
    return f"Not significantly different from `{base}`: {', '.join(same)}."


def _reason(s: SetupSummary) -> str | None:
    """The largest measured communication cost per step among the multi-worker cells."""
    costly = [c for c in s.cells if c.workers > 1 and c.comm_s and c.steps and c.train_median]
    if not costly:
        return None
    c = max(costly, key=lambda c: c.comm_fraction or 0.0)
    step = (c.train_median or 0.0) / c.steps
    comm = (c.comm_s or 0.0) / c.steps
    backend = f"{c.backend} " if c.backend else ""
    return (f"Why: in `{c.strategy}` ×{c.workers}, the {backend}synchronisation costs "
            f"{_ms(comm)} of a {_ms(step)} step ({_pct(comm / step)}), measured by "
            f"{(c.comm_method or 'its own timer').split(':')[0]}.")


def _repeats_line(s: SetupSummary) -> str | None:
    runs = [c.ok for c in s.cells if c.ok]
    if runs and max(runs) < 2:
        return ("Each cell ran once, so no difference here can be called significant: a 95% "
                f"interval of a median needs at least {MIN_RUNS_FOR_95} runs per cell "
                f"(`--repeats {MIN_RUNS_FOR_95}`, or `--repeats auto`).")
    if runs and min(runs) < MIN_RUNS_FOR_95:
        return (f"Intervals are 95% bootstrap intervals over {min(runs)}–{max(runs)} runs per "
                f"cell; with fewer than {MIN_RUNS_FOR_95} runs they are optimistic, so treat "
                "close calls with care.")
    return None


def _warnings(s: SetupSummary) -> list[str]:
    out = []
    contended = [f"`{c.strategy}` ×{c.workers} ({c.contended} of {c.ok})" for c in s.cells
                 if c.contended]
    if contended:
        out.append("Runs measured while other processes used the cores (contended): "
                   f"{', '.join(contended)}; their times include that load.")
    out += [f"`{c.strategy}` ×{c.workers}: {n}" for c in s.cells for n in c.warnings]
    return out


def verdict(s: SetupSummary) -> list[str]:
    """Sentences for one setup, most important first."""
    base = s.baseline.strategy if s.baseline else "the baseline"
    lines = fastest_lines(s, base)
    for extra in (_not_significant(s, base), _reason(s), _repeats_line(s)):
        if extra:
            lines.append(extra)
    return lines + _warnings(s)
