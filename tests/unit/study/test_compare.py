"""`distbench compare`: the matrix, resume bookkeeping, failing cells, Ctrl-C and --resume.

Command: python -m pytest tests/unit/study/test_compare.py

Every test replaces the per-run command with a tiny Python process that writes (or fails to
write) a record, so the orchestration is tested in seconds. (A real compare interrupted and
resumed: tests/cli/test_compare_resume.py.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter

import pytest

from distbench.api.runs import compare_request
from distbench.api.settings import STUDY_ONLY, config_argv
from distbench.cli.flags import given_settings
from distbench.cli.main import build_parser, main
from distbench.launch.warmstart import WarmPool
from distbench.report.analysis import INTERRUPTED, analyse
from distbench.results.records import append_record, load_records, make_record
from distbench.study import compare
from distbench.study.compare import Cell, CellRunner, Plan, Slot, pending_slots, with_baselines

from helpers import COMPARE_TINY, MEASUREMENT_KEYS, assert_schema

APPEND = ("import json, sys; from distbench.results.records import append_record; "
          "append_record(sys.argv[1], json.loads(sys.argv[2]))")


# --------------------------------------------------------------------------- the matrix


def test_cells_put_baselines_at_one_worker_and_slots_interleave():
    plan = Plan(["single", "ddp", "tf-single", "tf-mirrored"], [1, 2], repeats=2)
    assert [(c.strategy, c.workers) for c in plan.cells()] == [
        ("single", 1), ("ddp", 1), ("ddp", 2), ("tf-single", 1), ("tf-mirrored", 1),
        ("tf-mirrored", 2)]
    slots = plan.slots()
    assert len(slots) == 12
    # A B C A B C: every cell once before any cell runs a second time.
    assert [s.repeat for s in slots] == [0] * 6 + [1] * 6
    assert [s.cell for s in slots[:6]] == [s.cell for s in slots[6:]]


def test_baselines_are_added_for_each_framework_in_the_study():
    available = ["single", "ddp", "tf-single", "tf-mirrored"]
    assert with_baselines(["ddp"], available) == ["single", "ddp"]
    assert with_baselines(["tf-mirrored", "ddp"], available) == [
        "single", "tf-single", "tf-mirrored", "ddp"]
    assert with_baselines(["ddp", "single"], available) == ["single", "ddp"]
    assert with_baselines(["tf-mirrored"], ["single"]) == ["tf-mirrored"]  # TF not installed


def test_pending_skips_completed_runs_cell_by_cell():
    plan = Plan(["single", "ddp"], [2], repeats=3)
    done = Counter({Cell("single", 1): 2, Cell("ddp", 2): 5})
    assert pending_slots(plan, done) == [Slot(Cell("single", 1), 2)]
    assert len(pending_slots(plan, Counter())) == 6


def test_child_config_reproduces_the_flags(tmp_path):
    args = build_parser().parse_args([
        "compare", "--strategies", "ddp", "--workers", "2", "--dataset", "synthetic",
        "--synthetic-shape", "3x8x8", "--epochs", "4", "--lr", "0.0125", "--overlap",
        "--batch-size", "48", "--target-accuracy", "0.5"])
    plan = compare.make_plan(compare_request(given_settings(args, STUDY_ONLY)))
    plan = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))  # as saved in compare.json
    cfg = plan.config(Cell("ddp", 2), tmp_path)
    assert (cfg.strategy, cfg.workers, cfg.epochs, cfg.lr, cfg.batch_size) == (
        "ddp", 2, 4, 0.0125, 48)
    # --overlap is custom's option: ddp's cell runs without it, custom's keeps it.
    assert cfg.data.synthetic_shape == (3, 8, 8) and not cfg.overlap and not cfg.progress
    assert plan.config(Cell("custom", 2), tmp_path).overlap
    assert cfg.target_accuracy == 0.5 and cfg.out == str(tmp_path)
    argv = config_argv(plan.base)
    assert "--synthetic-shape" in argv and "--overlap" in argv
    assert "--momentum" not in argv  # defaults stay implicit


@pytest.mark.parametrize("argv, message", [
    (["--workers", "1,x"], "--workers expects comma-separated integers"),
    (["--workers", "0"], "--workers expects"),
    (["--repeats", "0"], "--repeats expects an integer >= 1 or 'auto'"),
    (["--repeats", "auto", "--target-ci", "x"], "--target-ci expects a percentage"),
    (["--repeats", "auto", "--time-budget", "soon"], "--time-budget expects a duration"),
    (["--strategies", "nope"], "unknown strategy 'nope'"),
    (["--strategies", "ddp", "--workers", "3"], "multiple of --workers 3"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--epochs", "0"], "--epochs must be >= 1"),
])
def test_invalid_values_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert main(["compare", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- with fake runs


@pytest.fixture
def fake_runs(monkeypatch):
    """Each run becomes a quick process: ok for most cells, a failure for mpi and custom."""
    def command(self: CellRunner, slot: Slot) -> list[str]:
        name = slot.cell.strategy
        if name == "mpi":
            return [sys.executable, "-c", "import sys; sys.stderr.write('some output\\n"
                    "distbench: error: mpi needs a working mpiexec\\n'); sys.exit(1)"]
        if name == "custom":
            return [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"]
        train_s = 2.0 / slot.cell.workers + 0.1 * slot.repeat
        # Real runs start seconds apart; these fake ones would share a second, and the report
        # orders a cell's runs (its interleaved rounds) by start time.
        started = f"2026-01-01T00:{self.started // 60:02d}:{self.started % 60:02d}+00:00"
        record = make_record(self.configs[slot.cell], started_at=started, measured={
            "train_s": train_s, "samples_per_s": 1000 / train_s, "test_accuracy": 0.9,
            "comm_s": 0.1, "comm_fraction": 0.1 / train_s, "threads_per_worker": 1,
            "history": [{"epoch": 1, "time_s": train_s, "test_accuracy": 0.9}]})
        return [sys.executable, "-c", APPEND, str(self.out), json.dumps(record)]

    monkeypatch.setattr(CellRunner, "command", command)
    monkeypatch.setattr(WarmPool, "ensure", lambda self, framework: None)  # no worker to fork


def test_failing_cells_are_recorded_and_the_study_goes_on(fake_runs, tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["compare", "--strategies", "ddp,mpi,custom", "--workers", "1,2",
                 "--repeats", "2", *COMPARE_TINY, "--out", str(out), "--no-progress"])
    assert code == 0
    records = load_records(out)
    assert len(records) == 2 * (1 + 2 + 2 + 2)
    by_cell = Counter((r["strategy"], r["workers"], r["status"]) for r in records)
    assert by_cell[("single", 1, "ok")] == 2 and by_cell[("ddp", 2, "ok")] == 2
    assert by_cell[("mpi", 2, "failed")] == 2 and by_cell[("custom", 1, "failed")] == 2
    errors = {r["strategy"]: r["error"] for r in records if r["status"] == "failed"}
    assert errors["mpi"] == "mpi needs a working mpiexec"
    assert errors["custom"].startswith("run process killed by SIGKILL")
    summary = (out / "summary.md").read_text()
    assert "| mpi | 2 | failed: mpi needs a working mpiexec |" in summary
    # Two runs each (1.0 and 1.1 s; single 2.0 and 2.1 s): the intervals span them.
    assert "| ddp | 2 | 1.05 [1.00–1.10] | 1.95× [1.91–2.00] |" in summary
    for name in ("summary.csv", "report.html", "speedup.png", "train_time.png",
                 "accuracy_time.png", "compute_comm.png", "compare.json"):
        assert (out / name).is_file(), name
    assert len(list((out / "logs").iterdir())) == 14
    meta = json.loads((out / "compare.json").read_text())
    assert meta["plan"]["strategies"] == ["single", "ddp", "mpi", "custom"]
    (session,) = meta["sessions"]
    assert session["runs"] == 14 and session["command"].startswith("distbench compare")
    assert "Training time (s) median [95% CI]" in capsys.readouterr().out

    # Everything has an answer (failures included): resuming runs nothing and keeps the records.
    before = (out / "runs.jsonl").read_bytes()
    assert main(["compare", "--resume", str(out), "--no-progress"]) == 0
    assert (out / "runs.jsonl").read_bytes() == before
    assert len(json.loads((out / "compare.json").read_text())["sessions"]) == 2


def test_resume_takes_no_study_settings(fake_runs, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["compare", "--strategies", "ddp", "--workers", "2", "--repeats", "1",
                 *COMPARE_TINY, "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", "--resume", str(out), "--epochs", "5"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["compare", *COMPARE_TINY, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["compare", "--resume", str(tmp_path)]) == 2
    assert "no compare.json" in capsys.readouterr().err


def test_a_hung_run_is_stopped_and_recorded(monkeypatch, tmp_path):
    monkeypatch.setattr(compare, "CELL_TIMEOUT_S", 1.0)
    monkeypatch.setattr(compare, "STOP_GRACE_S", 10.0)
    monkeypatch.setattr(CellRunner, "command",
                        lambda self, slot: [sys.executable, "-c", "import time; time.sleep(60)"])
    out = tmp_path / "study"
    start = time.monotonic()
    assert main(["compare", "--strategies", "ddp", "--workers", "2", "--repeats", "1",
                 "--no-baseline", *COMPARE_TINY, "--out", str(out), "--no-progress"]) == 0
    assert time.monotonic() - start < 30
    (record,) = load_records(out)
    assert record["status"] == "failed"
    assert record["error"] == "no result after 1 s: stopped by distbench compare"



def test_records_written_by_compare_for_a_dead_run_match_the_schema(tmp_path):
    """A run that died without a record still leaves one the report can read: every key the
    schema promises, no measurement, and a failed cell with the reason in the report."""
    plan = Plan(["ddp"], [2], 1)
    runner = CellRunner(plan, tmp_path, {Cell("ddp", 2): plan.config(Cell("ddp", 2), tmp_path)})
    record = runner.record_failure(Slot(Cell("ddp", 2), 0), "run process killed by SIGKILL")
    (stored,) = load_records(tmp_path)
    assert stored == json.loads(json.dumps(record))
    assert_schema(stored)
    assert (stored["strategy"], stored["workers"], stored["status"]) == ("ddp", 2, "failed")
    assert all(stored[k] is None for k in MEASUREMENT_KEYS)
    (cell,) = analyse([stored]).cells
    assert (cell.status, cell.failed, cell.reason) == ("failed", 1, "run process killed by SIGKILL")
    append_record(tmp_path, {**record, "run_id": "x", "error": INTERRUPTED})
    assert compare.completed_counts(tmp_path, plan, runner.configs) == {Cell("ddp", 2): 1}


def test_termination_signals_stop_a_study_like_ctrl_c():
    with pytest.raises(KeyboardInterrupt), compare.stop_on_termination():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
