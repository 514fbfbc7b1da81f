"""The statistics of the report, on hand-made records: arithmetic, failures, baselines, merging.

Command: python -m pytest tests/unit/report/test_analysis.py
"""

from __future__ import annotations

import pytest

from distbench.report.analysis import INTERRUPTED, analyse, load_dirs
from distbench.results.records import append_record

from helpers import rec, study_records


def cell(study, strategy, workers, host=None):
    return next(c for s in study.setups for c in s.cells
                if c.strategy == strategy and c.workers == workers
                and (host is None or c.setup.host == host))


def test_median_iqr_speedup_and_efficiency_arithmetic():
    records = [rec("single", 1, t) for t in (10.0, 12.0, 11.0, 13.0)]
    records += [rec("ddp", 2, t, comm_s=1.0) for t in (5.0, 7.0, 6.0)]
    study = analyse(records)
    base, ddp = cell(study, "single", 1), cell(study, "ddp", 2)
    # numpy's linear percentiles: [10, 11, 12, 13] -> q1 10.75, median 11.5, q3 12.25
    assert (base.train_q1, base.train_median, base.train_q3) == (10.75, 11.5, 12.25)
    assert (ddp.train_q1, ddp.train_median, ddp.train_q3) == (5.5, 6.0, 6.5)
    assert base.speedup == 1.0 and base.efficiency == 1.0
    assert ddp.speedup == pytest.approx(11.5 / 6.0)
    assert ddp.efficiency == pytest.approx(11.5 / 6.0 / 2)
    # Both use the machine's 2 cores (baseline 1 × 2 threads, ddp 2 × 1 thread).
    assert ddp.core_efficiency == pytest.approx(ddp.speedup)
    assert ddp.samples_per_s == pytest.approx(8000 / 6.0)
    assert ddp.comm_fraction == pytest.approx(1.0 / 6.0)
    assert ddp.compute_s == pytest.approx(5.0)
    assert ddp.train_s == [5.0, 7.0, 6.0]  # every raw run kept, in order


def test_accuracy_median_min_and_time_to_target():
    records = [rec("single", 1, 10.0, acc=a, target=0.8, ttt=t)
               for a, t in ((0.90, 4.0), (0.85, 6.0), (0.70, None))]
    study = analyse(records)
    c = cell(study, "single", 1)
    assert c.test_acc_median == pytest.approx(0.85) and c.test_acc_min == pytest.approx(0.70)
    assert study.setups[0].target == 0.8
    assert c.time_to_target == pytest.approx(5.0) and c.target_reached == 2


def test_curve_is_per_epoch_median_over_repeats():
    h = [[{"epoch": 1, "time_s": t, "test_accuracy": a},
          {"epoch": 2, "time_s": 2 * t, "test_accuracy": a + 0.1}]
         for t, a in ((1.0, 0.5), (3.0, 0.7), (2.0, 0.6))]
    study = analyse([rec("single", 1, 2 * hh[0]["time_s"], history=hh) for hh in h])
    assert cell(study, "single", 1).curve == [(2.0, 0.6), (4.0, pytest.approx(0.7))]


def test_failed_cell_keeps_reason_and_no_numbers():
    study = analyse(study_records())
    mpi = cell(study, "mpi", 2)
    assert mpi.status == "failed" and (mpi.ok, mpi.failed, mpi.runs) == (0, 3, 3)
    assert mpi.reason == "rank 1 exited with code 1: boom"
    assert mpi.train_median is None and mpi.speedup is None and mpi.efficiency is None
    # The other cells are unaffected.
    assert cell(study, "ddp", 2).speedup == pytest.approx(11.0 / 6.0)


def test_partly_failed_cell_uses_successes_and_says_so():
    records = [rec("single", 1, 10.0), rec("ddp", 2, 4.0), rec("ddp", 2, 6.0),
               rec("ddp", 2, status="failed", error="rank 0 was killed by SIGKILL\ntraceback")]
    c = cell(analyse(records), "ddp", 2)
    assert (c.ok, c.failed, c.status) == (2, 1, "ok")
    assert c.train_median == 5.0
    assert c.reason == "rank 0 was killed by SIGKILL"  # first line only
    assert any("1 of 3 runs failed" in n for n in c.notes)


def test_interrupted_runs_are_neither_success_nor_failure():
    records = [rec("single", 1, 10.0), rec("ddp", 2, status="failed", error=INTERRUPTED),
               rec("ddp", 1, 9.0), rec("ddp", 1, status="failed", error=INTERRUPTED)]
    study = analyse(records)
    assert cell(study, "ddp", 2).status == "interrupted"
    one = cell(study, "ddp", 1)
    assert (one.ok, one.failed, one.interrupted, one.status) == (1, 0, 1, "ok")
    assert not one.notes


@pytest.mark.parametrize("baseline", ["absent", "failed"])
def test_missing_baseline_gives_no_speedup_and_a_note(baseline):
    records = [rec("ddp", 2, 5.0), rec("ddp", 2, 6.0)]
    if baseline == "failed":
        records.append(rec("single", 1, status="failed", error="out of memory"))
    study = analyse(records)
    c = cell(study, "ddp", 2)
    assert c.train_median == 5.5 and c.speedup is None and c.efficiency is None
    (note,) = study.setups[0].notes
    assert "baseline `single`" in note
    assert ("was not run" if baseline == "absent" else "no successful run") in note


def test_tensorflow_rows_get_both_views():
    study = analyse(study_records())
    tf = cell(study, "tf-mirrored", 2)
    assert tf.speedup == pytest.approx(11.0 / 15.5)  # against single, the one baseline
    assert tf.framework_baseline == "tf-single"
    assert tf.speedup_fw == pytest.approx(21.0 / 15.5)
    assert tf.efficiency_fw == pytest.approx(21.0 / 15.5 / 2)
    assert tf.comm_fraction is None and tf.compute_s is None
    assert cell(study, "ddp", 2).framework_baseline is None


def test_oversubscription_is_noted():
    c = cell(analyse([rec("single", 1, 8.0), rec("ddp", 4, 5.0, threads=1)]), "ddp", 4)
    assert c.cores_used == 2
    assert any("4 workers on 2 cores" in n for n in c.notes)
    assert c.core_efficiency == pytest.approx(c.speedup)


def test_runs_that_took_fewer_threads_beside_busy_cores_are_noted():
    note = "1.0 of the 2 cores this run may use were busy: 1 thread(s) instead of 2"
    records = [rec("single", 1, 8.0), {**rec("single", 1, 9.0), "threads_note": note}]
    c = cell(analyse(records), "single", 1)
    assert any(n.startswith("1 of 2 runs started beside busy cores") and note in n
               for n in c.notes)
    assert not cell(analyse([rec("single", 1, 8.0)]), "single", 1).notes


def test_rows_in_registry_order_baselines_first():
    study = analyse(list(reversed(study_records())))
    order = [(c.strategy, c.workers) for c in study.setups[0].cells]
    assert order == [("single", 1), ("tf-single", 1), ("ddp", 1), ("ddp", 2), ("mpi", 2),
                     ("tf-mirrored", 2)]


def test_hosts_are_separate_setups_with_their_own_baseline():
    records = [rec("single", 1, 10.0, host="a"), rec("ddp", 2, 5.0, host="a"),
               rec("single", 1, 30.0, host="b"), rec("ddp", 2, 10.0, host="b")]
    study = analyse(records)
    assert [s.setup.host for s in study.setups] == ["a", "b"]
    assert cell(study, "ddp", 2, "a").speedup == 2.0
    assert cell(study, "ddp", 2, "b").speedup == 3.0


def test_merging_directories_pools_repeats_and_drops_duplicates(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    first = [rec("single", 1, 10.0), rec("ddp", 2, 5.0)]
    second = [rec("single", 1, 12.0), rec("ddp", 2, 7.0)]
    for r in first:
        append_record(a, r)
    for r in second + [first[0]]:  # the same run copied into b is counted once
        append_record(b, r)
    merged = load_dirs([a, b])
    assert len(merged) == 4
    assert load_dirs([b, a]) == merged  # argument order does not matter
    c = cell(analyse(merged), "ddp", 2)
    assert c.ok == 2 and c.train_median == 6.0 and c.speedup == pytest.approx(11.0 / 6.0)


def test_load_dirs_rejects_a_folder_without_records(tmp_path):
    from distbench.core.errors import UsageError

    with pytest.raises(UsageError, match="no runs.jsonl"):
        load_dirs([tmp_path])
