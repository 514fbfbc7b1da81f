"""examples/notebook.ipynb, executed in a real Jupyter kernel as a user would run it.

Command: python -m pytest tests/cli/test_notebook.py

The notebook defines a model, runs `distbench.compare` on mnist-5k (single and ddp at 1 and 2
workers, tf-single) and shows the records, the report's summary and a figure. Its results folder
goes under the test's temporary folder (the kernel's working directory); the kernel inherits
this environment ($DISTBENCH_DATA, $PYTHONPATH).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distbench.data import DataError
from distbench.results.records import load_records

from helpers import REPO_ROOT, mnist_5k

nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the dev extra: "
                               "pip install -e '.[dev]'")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel", reason="the notebook test needs a Python kernel: "
                    "pip install -e '.[dev]'")

NOTEBOOK = REPO_ROOT / "examples" / "notebook.ipynb"


def outputs_of(cell: Any) -> dict[str, str]:
    """mime type -> content of every display and result of a cell, stream text under 'stream'."""
    found: dict[str, str] = {}
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            found["stream"] = found.get("stream", "") + output["text"]
        for mime, content in output.get("data", {}).items():
            found[mime] = content
    return found


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_the_notebook_runs_and_shows_records_summary_and_a_figure(tmp_path: Path) -> None:
    try:
        mnist_5k()
    except DataError as exc:
        pytest.skip(f"the notebook trains on mnist-5k, which cannot be loaded here: {exc}")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell's traceback, on any failure

    (study,) = (tmp_path / "results").iterdir()
    records = load_records(study)
    assert {(r["strategy"], r["workers"]) for r in records} == {
        ("single", 1), ("ddp", 1), ("ddp", 2), ("tf-single", 1)}
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    assert len({r["model"] for r in records}) == 1
    assert (study / "model-code").is_dir() and (study / "report.html").is_file()

    code = [outputs_of(c) for c in notebook.cells if c.cell_type == "code"]
    records_table, summary_table, figure = code[-3], code[-2], code[-1]
    assert "ddp" in records_table["text/html"] and "test_accuracy" in records_table["text/html"]
    assert "speedup" in summary_table["text/html"]
    assert figure["image/png"], "the figure was not shown as an image"
