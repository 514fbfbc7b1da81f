"""Records and reports as notebook objects: pandas DataFrames and matplotlib Figures.

Command: python -c "import distbench; print(distbench.report('results/<timestamp>').summary)"

`distbench.run()` and `distbench.compare()` return their records as a DataFrame (one row per
run, one column per record field, nested fields such as `config` and `history` kept as Python
objects) that knows its results folder: `df.attrs["out"]` (a string, kept by pandas through
`head()`, filtering and copies) and `df.distbench.out` (a `Path`), and `df.distbench.report()`
opens the report view of that folder.

`distbench.report(DIR)` is `distbench report DIR` without writing anything: the summary table
(summary.csv's rows) as a DataFrame and the plots as matplotlib Figures. This module imports
pandas, so `distbench.api` imports it only when a frame is made.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from distbench.report import load_report
from distbench.report.tables import csv_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUT_ATTR = "out"


def records_frame(records: list[dict[str, Any]], out: str | Path) -> pd.DataFrame:
    """The records as a DataFrame that carries its results folder."""
    frame = pd.DataFrame.from_records(records)
    frame.attrs[OUT_ATTR] = str(out)
    return frame


@pd.api.extensions.register_dataframe_accessor("distbench")
class ResultsAccessor:
    """`df.distbench`: the results folder of the records in `df`, and its report."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    @property
    def out(self) -> Path:
        """The results folder the records were read from (`df.attrs["out"]`)."""
        out = self._frame.attrs.get(OUT_ATTR)
        if not out:
            raise AttributeError("this DataFrame carries no results folder (attrs['out']): it "
                                 "did not come from distbench.run() or distbench.compare()")
        return Path(out)

    def report(self) -> ReportView:
        """The report view of the results folder (`distbench.report(df.distbench.out)`)."""
        return report_view([self.out])


@dataclass
class ReportView:
    """What `distbench report` shows for some results folders, as notebook objects."""

    dirs: list[Path]
    # One row per cell (setup, strategy, workers): the columns of summary.csv.
    summary: pd.DataFrame
    # By plot name (train_time, speedup, accuracy_time, compute_comm, memory), suffixed -1, -2,
    # ... when the records hold several setups, as the PNG files are named.
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the studies' own: noise, reruns, repeats
    skipped: list[str] = field(default_factory=list)  # what could not be read or drawn

    def _repr_html_(self) -> str:
        """The summary, the notes and every figure, for a notebook cell that ends with the view."""
        from distbench.report.plots import png_bytes

        parts = [f"<p>distbench report of {html.escape(', '.join(map(str, self.dirs)))}</p>",
                 self.summary.to_html(index=False, na_rep="")]
        parts += [f"<p>{html.escape(line)}</p>" for line in self.notes + self.skipped]
        parts += [f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
                  f'{base64.b64encode(png_bytes(fig)).decode()}"/>'
                  for name, fig in self.figures.items()]
        return "\n".join(parts)


def report_view(dirs: list[str | Path]) -> ReportView:
    """Load and analyse the records of `dirs` and draw the plots; writes nothing."""
    import importlib.util

    from distbench.report.plots import MATPLOTLIB_MISSING, draw_figures, plot_suffix

    loaded = load_report(dirs)
    summary = pd.read_csv(io.StringIO(csv_text(loaded.study)))
    view = ReportView([Path(d) for d in dirs], summary, notes=loaded.notes,
                      skipped=list(loaded.unreadable))
    if importlib.util.find_spec("matplotlib") is None:
        view.skipped.append(MATPLOTLIB_MISSING)
        return view
    setups = loaded.study.setups
    for i, setup in enumerate(setups):
        suffix = plot_suffix(i, len(setups))
        view.figures.update({name + suffix: fig for name, fig in draw_figures(setup).items()})
    show_figures_inline()
    return view


def show_figures_inline() -> None:
    """In IPython or Jupyter, show a bare `Figure` as the report's PNG.

    pyplot's inline backend registers that display only once pyplot is imported; the report's
    figures are plain Figures, so without this a notebook would print `<Figure size ...>`. A
    display already registered (pyplot's) is left alone.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    from matplotlib.figure import Figure

    from distbench.report.plots import png_bytes

    formatter = shell.display_formatter.formatters["image/png"]
    if Figure not in formatter.type_printers:
        formatter.for_type(Figure, png_bytes)
