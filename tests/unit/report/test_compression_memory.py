"""Compressed cells are their own rows, measured against their exact twin; memory per rank is a
column and a plot."""

from __future__ import annotations

from distbench.report.analysis import analyse
from distbench.report.plots import PLOT_NAMES
from distbench.report.tables import columns, csv_text, markdown
from distbench.report.verdict import fastest_lines

from helpers import rec

MB = 2**20


def study():
    return analyse([
        rec("single", 1, 10.0, acc=0.90, exact=True, model_state_bytes=[16 * MB]),
        rec("ddp", 2, 6.0, acc=0.90, exact=True, compression="none",
            model_state_bytes=[16 * MB, 16 * MB], peak_rss_mb=[300.0, 310.0]),
        rec("ddp", 2, 4.0, acc=0.85, exact=False, compression="fp16",
            model_state_bytes=[16 * MB, 16 * MB]),
        rec("fsdp", 2, 7.0, acc=0.90, exact=True, model_state_bytes=[8 * MB, 8.5 * MB]),
    ])


def test_compressed_run_is_its_own_cell_with_an_accuracy_delta():
    (summary,) = study().setups
    cells = {(c.strategy, c.workers): c for c in summary.cells}
    assert set(cells) == {("single", 1), ("ddp", 2), ("ddp+fp16", 2), ("fsdp", 2)}
    assert abs(cells["ddp+fp16", 2].acc_delta + 0.05) < 1e-9
    assert cells["ddp", 2].acc_delta is None
    assert cells["fsdp", 2].state_mb == 8.5
    assert cells["ddp", 2].rss_mb == 310.0


def test_tables_show_delta_and_memory():
    (summary,) = study().setups
    headers, make_row = columns(summary)
    assert "Acc Δ vs exact" in headers
    memory = headers.index("Model state MB/rank (max rank), peak RSS MB")
    rows = {make_row(c)[0]: make_row(c) for c in summary.cells}
    assert rows["ddp+fp16"][headers.index("Acc Δ vs exact")] == "-5.00 pts"
    assert rows["ddp"][memory] == "16.0, RSS 310"
    assert "ddp+fp16" in markdown(study()) and "accuracy_delta_vs_exact" in csv_text(study())


def test_fastest_compressed_cell_is_not_a_plain_win():
    (summary,) = study().setups
    (line,) = [ln for ln in fastest_lines(summary, "single") if ln.startswith("2 workers")]
    assert "`ddp+fp16`" in line and "inexact" in line and "5.00 accuracy points" in line


def test_memory_plot_is_listed():
    assert "memory" in PLOT_NAMES


def test_old_records_show_no_new_columns():
    (summary,) = analyse([rec("single", 1), rec("ddp", 2, 6.0)]).setups
    headers, _ = columns(summary)
    assert "Acc Δ vs exact" not in headers and not any("Model state" in h for h in headers)
