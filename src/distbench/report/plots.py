"""The report's PNG plots, drawn with matplotlib from the analysed cells only.

Command: distbench report results/<timestamp>/

- train_time.png: training time per strategy, one bar per worker count, whiskers for the 95%
  interval of the median, every run as a dot, on a log axis (one slow outlier must not flatten
  every real bar);
- speedup.png: speedup against the number of workers, with the ideal (linear) line;
- accuracy_time.png: test accuracy against training wall time, one curve per strategy;
- compute_comm.png: compute and communication time as stacked bars;
- memory.png (where records measured it): model state (parameters, gradients, optimizer
  state) held by the largest rank against workers, one line per strategy: flat for replicas,
  falling for sharded strategies.

The report imports matplotlib here only, so `import distbench` never pays for it. The plots are
plain `matplotlib.figure.Figure`s, never pyplot's: nothing global is created or kept, the style is
set for the drawing only, and a notebook (`distbench.report(DIR).figures`) shows the very objects
the report saves. Figures use fixed sizes, fonts and colours, and carry no date, so the same records
give the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distbench.report.analysis import BASELINE, CellStats, SetupSummary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
SIZE = (8.0, 4.5)
STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "svg.hashsalt": "0",
         "axes.spines.top": False, "axes.spines.right": False}
MATPLOTLIB_MISSING = 'plots: matplotlib is not installed (pip install "distbench[report]")'
PLOT_NAMES = ("train_time", "speedup", "accuracy_time", "compute_comm", "memory")
TITLES = {
    "train_time": "Training time per strategy (median, 95% CI whiskers, dots = runs; log axis)",
    "speedup": "Speedup against workers (vs single ×1)",
    "accuracy_time": "Test accuracy against training wall time",
    "compute_comm": "Compute and communication (median seconds)",
    "memory": "Model state per rank against workers (largest rank, median over runs)",
}


def _colours(summary: SetupSummary) -> dict[str, Any]:
    from matplotlib import colormaps

    names = list(dict.fromkeys(c.strategy for c in summary.cells))
    cmap = colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_train_time(summary: SetupSummary, ax: Any) -> None:
    from matplotlib import colormaps
    from matplotlib.ticker import LogFormatter

    ok = [c for c in summary.cells if c.train_median is not None]
    if not ok:
        _empty(ax, "no successful run")
        return
    strategies = list(dict.fromkeys(c.strategy for c in summary.cells))
    workers = sorted({c.workers for c in summary.cells})
    width = 0.8 / len(workers)
    cmap = colormaps["viridis"]
    for j, w in enumerate(workers):
        colour = cmap(0.15 + 0.7 * j / max(1, len(workers) - 1))
        for i, name in enumerate(strategies):
            c = next((c for c in summary.cells if c.strategy == name and c.workers == w), None)
            if c is None:
                continue
            x = i - 0.4 + width * (j + 0.5)
            if c.train_median is None:
                ax.text(x, 0.02, "✗ failed", ha="center", va="bottom", color="red",
                        transform=ax.get_xaxis_transform())
                continue
            low, high = (c.train_ci.low, c.train_ci.high) if c.train_ci else (c.train_median,) * 2
            err = [[c.train_median - low], [high - c.train_median]]
            ax.bar(x, c.train_median, width * 0.9, color=colour, yerr=err, capsize=3,
                   label=f"{w} worker{'s' if w > 1 else ''}" if i == _first(strategies, w, summary)
                   else None)
            ax.plot([x] * len(c.train_s), c.train_s, "o", color="black", markersize=2.5)
    ax.set_xticks(range(len(strategies)), strategies, rotation=35, ha="right",
                  rotation_mode="anchor")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_ylabel("training time (s, log scale)")
    ax.legend(frameon=False)


def _first(strategies: list[str], workers: int, summary: SetupSummary) -> int:
    """Index of the first strategy with a successful cell at `workers` (one legend entry each)."""
    for i, name in enumerate(strategies):
        if any(c.strategy == name and c.workers == workers and c.train_median is not None
               for c in summary.cells):
            return i
    return -1


def plot_speedup(summary: SetupSummary, ax: Any) -> None:
    cells = [c for c in summary.cells if c.speedup is not None]
    if not cells:
        _empty(ax, f"no speedup: the baseline `{BASELINE}` ×1 has no successful run here")
        return
    colours = _colours(summary)
    top = max(c.workers for c in summary.cells)
    ax.plot([1, top], [1, top], "--", color="grey", label="ideal (linear)")
    ax.axhline(1.0, color="grey", linewidth=0.6, linestyle=":")
    _lines_by_strategy(ax, summary, cells, lambda c: c.speedup, colours,
                       f"speedup vs {BASELINE} ×1")


def _lines_by_strategy(ax: Any, summary: SetupSummary, cells: list[CellStats],
                       value: Any, colours: dict[str, Any], ylabel: str) -> None:
    """One line per strategy of `value(cell)` against workers, from zero up."""
    for name in dict.fromkeys(c.strategy for c in cells):
        pts = sorted((c.workers, value(c)) for c in cells if c.strategy == name)
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, "o-", color=colours[name], label=name)
    ax.set_xticks(sorted({c.workers for c in summary.cells}))
    ax.set_xlabel("workers")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8, ncol=2)


def curve_cells(summary: SetupSummary) -> list[CellStats]:
    """One cell per strategy: its largest worker count with a successful run."""
    chosen: dict[str, CellStats] = {}
    for c in summary.cells:
        if c.curve and (c.strategy not in chosen or c.workers > chosen[c.strategy].workers):
            chosen[c.strategy] = c
    return list(chosen.values())


def plot_accuracy_time(summary: SetupSummary, ax: Any) -> None:
    cells = curve_cells(summary)
    if not cells:
        _empty(ax, "no per-epoch history in the records")
        return
    colours = _colours(summary)
    for c in cells:
        xs, ys = zip(*c.curve, strict=True)
        ax.plot(xs, [100 * y for y in ys], "o-", color=colours[c.strategy],
                label=f"{c.strategy} ×{c.workers}")
    if summary.target is not None:
        ax.axhline(100 * summary.target, color="grey", linestyle="--", label="target")
    ax.set_xlabel("training wall time (s, median per epoch)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlim(left=0)
    ax.legend(frameon=False, fontsize=8)


def plot_compute_comm(summary: SetupSummary, ax: Any) -> None:
    cells = [c for c in summary.cells if c.train_median is not None]
    if not cells:
        _empty(ax, "no successful run")
        return
    labels = [f"{c.strategy} ×{c.workers}" for c in cells]
    xs = range(len(cells))
    compute = [c.compute_s if c.compute_s is not None else c.train_median for c in cells]
    comm = [c.comm_s or 0.0 for c in cells]
    ax.bar(xs, compute, 0.6, color="#4c78a8", label="compute")
    ax.bar(xs, comm, 0.6, bottom=compute, color="#f58518", label="communication")
    for x, c in zip(xs, cells, strict=True):
        if c.comm_s is None:
            ax.text(x, c.train_median, "comm n/a", ha="center", va="bottom", fontsize=7)
        elif c.comm_fraction:
            ax.text(x, compute[x] + comm[x], f"{c.comm_fraction:.0%}", ha="center",
                    va="bottom", fontsize=7)
    ax.set_xticks(list(xs), labels, fontsize=8, rotation=35, ha="right",
                  rotation_mode="anchor")
    ax.margins(y=0.12)
    ax.set_ylabel("seconds")
    ax.legend(frameon=False)


def plot_memory(summary: SetupSummary, ax: Any) -> None:
    cells = [c for c in summary.cells if c.state_mb is not None]
    _lines_by_strategy(ax, summary, cells, lambda c: c.state_mb, _colours(summary),
                       "model state per rank (MB)")


DRAW = {
    "train_time": plot_train_time,
    "speedup": plot_speedup,
    "accuracy_time": plot_accuracy_time,
    "compute_comm": plot_compute_comm,
    "memory": plot_memory,
}


def plot_suffix(index: int, setups: int) -> str:
    """What tells the plots of several setups apart in their names: -1, -2, ... (none for one)."""
    return f"-{index + 1}" if setups > 1 else ""


def draw_figures(summary: SetupSummary) -> dict[str, Figure]:
    """The plots of one setup as figures, by name; the memory plot only where records have it."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    figures = {}
    for name in PLOT_NAMES:
        if name == "memory" and all(c.state_mb is None for c in summary.cells):
            continue  # records from before the memory count: nothing to draw
        with rc_context(STYLE):
            fig = Figure(figsize=SIZE, dpi=DPI)
            ax = fig.subplots()
            DRAW[name](summary, ax)
            ax.set_title(TITLES[name], loc="left", fontsize=10)
            fig.tight_layout()
        figures[name] = fig
    return figures


def png_bytes(fig: Figure) -> bytes:
    """A figure as the report's PNG: its size and style, no date or software stamp."""
    from matplotlib import rc_context

    buf = io.BytesIO()
    with rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def write_plots(summary: SetupSummary, out_dir: Path, suffix: str = "") -> dict[str, Path]:
    """Draw the plots of one setup into PNG files; returns name -> path."""
    paths = {}
    for name, fig in draw_figures(summary).items():
        paths[name] = out_dir / f"{name}{suffix}.png"
        paths[name].write_bytes(png_bytes(fig))
    return paths
