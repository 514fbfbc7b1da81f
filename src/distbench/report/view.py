"""A report as notebook objects: the summary as a pandas DataFrame, the plots as matplotlib Figures.

Command: python -c "import distbench; print(distbench.report('results/<timestamp>').summary)"

`distbench.report(DIR, ...)` (the report package, called) is `distbench report DIR` without
writing anything: the same analysis (`load_report`), the summary table (summary.csv's rows and
columns) and the very figures the report saves as PNG. pandas and matplotlib are imported only
when a view is made.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from distbench.core.errors import DistbenchError, UsageError
from distbench.report.sources import load_report
from distbench.report.tables import csv_text

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


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


def need_pandas(call: str) -> None:
    """Checked first: a run's result must not be lost to a missing library after it ran."""
    if importlib.util.find_spec("pandas") is None:
        raise DistbenchError(f"{call}() returns pandas DataFrames: "
                             'pip install "distbench[report]"')


def view(*dirs: str | os.PathLike[str]) -> ReportView:
    """Load and analyse the records of `dirs` and draw the plots; writes nothing."""
    from distbench.report.plots import MATPLOTLIB_MISSING, draw_figures, plot_suffix

    if not dirs:
        raise UsageError("distbench.report() needs at least one results folder")
    need_pandas("distbench.report")
    import pandas as pd

    loaded = load_report([os.fspath(d) for d in dirs])
    summary = pd.read_csv(io.StringIO(csv_text(loaded.study)))
    shown = ReportView([Path(d) for d in dirs], summary, notes=loaded.notes,
                       skipped=list(loaded.unreadable))
    if importlib.util.find_spec("matplotlib") is None:
        shown.skipped.append(MATPLOTLIB_MISSING)
        return shown
    setups = loaded.study.setups
    for i, setup in enumerate(setups):
        suffix = plot_suffix(i, len(setups))
        shown.figures.update({name + suffix: fig for name, fig in draw_figures(setup).items()})
    show_figures_inline()
    return shown


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
