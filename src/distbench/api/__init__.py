"""distbench from Python: `run`, `compare` and `report`, the commands' twins.

Command: python -c "import distbench; print(distbench.run(epochs=1, no_progress=True))"

    import distbench

    df = distbench.compare(strategies=["single", "ddp"], workers=[1, 2], dataset="mnist-5k",
                           epochs=1, repeats=1, model=my_factory, out="results/nb")
    df[["strategy", "workers", "train_s", "test_accuracy"]]
    view = distbench.report(df.distbench.out)    # view.summary, view.figures["speedup"]

The keywords are the flags of `distbench run` and `distbench compare` without their dashes,
dashes as underscores (`--batch-size 32` is `batch_size=32`); a value is what the flag's text
means or the Python value (`workers="1,2"` or `workers=[1, 2]`). An unknown keyword, like any
bad setting, raises `UsageError` with the command's one-line message, before anything is written
or started. The command line is a thin layer over the same functions (`api.settings`,
`api.runs`), so both accept and refuse the same settings.

`model` also takes a Python callable, `function(input_shape, num_classes, framework)` with
input_shape (C, H, W) and framework "torch" or "tf", returning a `torch.nn.Module` or a
`keras.Model` that outputs logits. Workers are separate processes, so it is shipped by value
into the results folder (`api.model_code`) and runs as the file spec of that code.

Runs happen in other processes: this package imports no framework, and pandas only to build the
returned DataFrame (`pip install "distbench[report]"`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from distbench.api.runs import launch_run, run_study
from distbench.api.settings import RUN_ONLY, STUDY_ONLY, check_keywords
from distbench.core.errors import DistbenchError, UsageError
from distbench.report.view import need_pandas

if TYPE_CHECKING:
    import pandas as pd

    from distbench.report.view import ReportView

__all__ = ["DistbenchError", "UsageError", "compare", "report", "run"]


def run(**settings: Any) -> pd.DataFrame:
    """Train once with one strategy (`distbench run`); returns the run's record as a one-row
    DataFrame whose `attrs["out"]` and `.distbench.out` name the results folder.

    Settings: strategy, workers, out, save_model, no_progress, config (a RunConfig JSON file
    instead of the other settings), and every setting runs share (dataset, model, epochs,
    batch_size, lr, ...: `distbench run --help`). A failed run raises `DistbenchError` with its
    reason, after recording it in the folder's runs.jsonl.
    """
    check_keywords(settings, RUN_ONLY, "distbench.run")
    need_pandas("distbench.run")
    record, out = launch_run(settings)
    from distbench.api.frames import records_frame

    return records_frame([record], out)


def compare(**settings: Any) -> pd.DataFrame:
    """Every strategy x worker count x repeat, then the report (`distbench compare`); returns
    every record of the study's folder (failed runs included, with their reason), with the
    folder in `attrs["out"]` and `.distbench.out`.

    Settings: strategies (a list or "a,b"; default every installed one but zero and fsdp),
    workers (a list or "1,2"), repeats (an integer or "auto", with target_ci, max_repeats,
    time_budget), rerun_contended, worker_start ("fork" or "exec"), no_baseline, resume, out,
    save_model="best", no_progress, and every setting runs share (`distbench compare --help`).
    Interrupted, it raises `KeyboardInterrupt` once every finished record is safe; `resume=out`
    continues it.
    """
    check_keywords(settings, STUDY_ONLY, "distbench.compare")
    need_pandas("distbench.compare")
    code, out = run_study(settings)
    if code == 130:
        raise KeyboardInterrupt
    from distbench.api.frames import records_frame
    from distbench.results.records import RUNS_FILE, load_records

    return records_frame(load_records(out / RUNS_FILE), out)


def report(*dirs: str | os.PathLike[str]) -> ReportView:
    """The report of one or more results folders (`distbench report`), without writing files:
    `.summary` (a DataFrame, the rows of summary.csv), `.figures` (matplotlib Figures by plot
    name, shown inline by a notebook), `.notes` and `.skipped`. The view itself displays as the
    summary followed by every figure. `distbench.report` (the report package, called) is this."""
    from distbench.report.view import view

    return view(*dirs)
