"""`run_compare` as a library call: a typed `CompareRequest` in, configs and compare.json out.

Command: python -m pytest tests/unit/study/test_compare_request.py

Each run is replaced by a quick process that appends a record, so these take seconds; the real
child command (`distbench run --config FILE`) is checked for what it is handed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.core.errors import UsageError
from distbench.launch.warmstart import WarmPool
from distbench.results.records import load_records, make_record
from distbench.study.compare import (
    Cell,
    CellRunner,
    CompareRequest,
    Plan,
    Slot,
    make_plan,
    run_compare,
)

APPEND = ("import json, sys; from distbench.results.records import append_record; "
          "append_record(sys.argv[1], json.loads(sys.argv[2]))")
BASE = RunConfig(data=DataConfig("synthetic", synthetic_samples=64),
                 model=ModelConfig("mlp-25"), epochs=1, batch_size=16, warmup_steps=1)


def redo(plan: Plan, out: Path) -> str:
    return f"redo {','.join(plan.strategies)} into {out.name}"


def request(tmp_path: Path, **changes: object) -> CompareRequest:
    settings: dict = {"base": BASE, "equivalent": redo, "strategies": ["ddp"],
                      "workers": [2, 1, 2], "repeats": 1, "out": tmp_path / "study",
                      "progress": False}
    return CompareRequest(**{**settings, **changes})


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def command(self: CellRunner, slot: Slot) -> list[str]:
        record = make_record(self.configs[slot.cell], measured={
            "train_s": 1.0, "samples_per_s": 64.0, "test_accuracy": 0.5, "comm_s": 0.0,
            "comm_fraction": 0.0, "history": [{"epoch": 1, "time_s": 1.0,
                                               "test_accuracy": 0.5}]})
        return [sys.executable, "-c", APPEND, str(self.out), json.dumps(record)]

    monkeypatch.setattr(CellRunner, "command", command)
    monkeypatch.setattr(WarmPool, "ensure", lambda self, framework: None)  # no worker to fork


def test_plan_comes_from_the_request() -> None:
    plan = make_plan(CompareRequest(BASE, redo, ["ddp"], [2, 1, 2], repeats=2, save_best=True))
    assert (plan.strategies, plan.workers, plan.repeats) == (["single", "ddp"], [1, 2], 2)
    assert plan.base.save_model and plan.base.epochs == 1
    cfg = plan.config(Cell("ddp", 2), Path("out"))
    assert (cfg.strategy, cfg.workers, cfg.out, cfg.progress) == ("ddp", 2, "out", False)
    assert make_plan(CompareRequest(BASE, redo, ["ddp"], no_baseline=True)).strategies == ["ddp"]
    for bad, message in ((CompareRequest(BASE, redo, ["nope"]), "unknown strategy 'nope'"),
                         (CompareRequest(BASE, redo, repeats=0), "--repeats must be >= 1"),
                         (CompareRequest(BASE, redo, workers=[0]), "--workers must be")):
        with pytest.raises(UsageError, match=message):
            make_plan(bad)


def test_each_child_gets_its_cell_config_as_a_file(fake_runs: None, tmp_path: Path) -> None:
    assert run_compare(request(tmp_path)) == 0
    out = tmp_path / "study"
    meta = json.loads((out / "compare.json").read_text())
    plan = Plan.from_dict(meta["plan"])
    assert meta["equivalent"] == "redo single,ddp into study"
    assert meta["sessions"][0]["command"] == meta["equivalent"]  # nothing typed: the equivalent
    assert plan.base == BASE and plan.workers == [1, 2]
    for cell in plan.cells():
        saved = json.loads((out / "configs" / f"{cell.strategy}-w{cell.workers}.json").read_text())
        assert RunConfig.from_dict(saved) == plan.config(cell, out)
    assert sorted((r["strategy"], r["workers"]) for r in load_records(out)) == [
        ("ddp", 1), ("ddp", 2), ("single", 1)]
    assert all(r["config"]["epochs"] == 1 and not r["config"]["progress"]
               for r in load_records(out))


def test_the_real_child_command_is_run_with_the_config_file(tmp_path: Path) -> None:
    plan = make_plan(request(tmp_path))
    runner = CellRunner(plan, tmp_path, {})
    assert runner.command(Slot(Cell("ddp", 2), 0)) == [
        sys.executable, "-m", "distbench", "run", "--config",
        str(tmp_path / "configs" / "ddp-w2.json")]


def test_resume_continues_the_saved_plan_and_refuses_a_broken_one(fake_runs: None,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert run_compare(request(tmp_path, repeats=1)) == 0
    # A resume's own settings are not used: the saved plan (one repeat) has nothing left to do.
    assert run_compare(request(tmp_path, base=RunConfig(), repeats=5, out=None,
                               resume=out, command="distbench compare --resume")) == 0
    assert len(load_records(out)) == 3
    sessions = json.loads((out / "compare.json").read_text())["sessions"]
    assert [s["command"] for s in sessions][1] == "distbench compare --resume"
    with pytest.raises(UsageError, match="drop --out or give the same folder"):
        run_compare(request(tmp_path, resume=out, out=tmp_path / "elsewhere"))
    for broken in ('{"plan": ', "[]", '{"plan": {"strategies": ["single"]}}'):
        (out / "compare.json").write_text(broken)
        with pytest.raises(UsageError, match="cannot resume"):
            run_compare(request(tmp_path, resume=out, out=None))
