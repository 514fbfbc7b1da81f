"""The records of `distbench.run()` and `distbench.compare()` as a pandas DataFrame.

Command: python -c "import distbench; print(distbench.run(epochs=1).distbench.out)"

One row per run, one column per record field (nested fields such as `config` and `history` kept
as Python objects). The frame knows its results folder: `df.attrs["out"]` (a string, which pandas
keeps through `head()`, filtering and copies) and `df.distbench.out` (a `Path`);
`df.distbench.report()` is `distbench.report(df.distbench.out)`. This module imports pandas, so
`distbench.api` imports it only when a frame is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from distbench.report.view import ReportView

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
        from distbench.report.view import view

        return view(self.out)
