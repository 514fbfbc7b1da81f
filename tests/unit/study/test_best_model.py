"""`distbench compare --save-model best`: every run saves, only the most accurate ok one stays.

Command: python -m pytest tests/unit/study/test_best_model.py

The runs are replaced by quick processes that write a record and a stand-in checkpoint, so the
bookkeeping is tested in seconds; the real checkpoint format is tested in
tests/unit/serving/test_predict.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from distbench.api.runs import compare_request
from distbench.api.settings import STUDY_ONLY
from distbench.cli.flags import given_settings
from distbench.cli.main import build_parser, main
from distbench.results.records import make_record
from distbench.study import compare
from distbench.study.best_model import BEST_DIR, keep_best, kept
from distbench.study.compare import CellRunner, Slot

from helpers import COMPARE_TINY

ACCURACY = {("single", 1): 0.80, ("ddp", 1): 0.85, ("ddp", 2): 0.93}
# Writes the stand-in checkpoint the way a run does (weights + sidecar in --out), then the record.
FAKE_RUN = """
import json, sys
from pathlib import Path
from distbench.results.records import append_record
out, record = Path(sys.argv[1]), json.loads(sys.argv[2])
(out / "model.safetensors").write_text(record["run_id"])
(out / "model.json").write_text(json.dumps({"run_id": record["run_id"],
    "strategy": record["strategy"], "workers": record["workers"],
    "test_accuracy": record["test_accuracy"]}))
record["checkpoint"] = str(out / "model.safetensors")
append_record(out, record)
"""


def _checkpoint(out: Path, run_id: str, accuracy: float, status: str = "ok") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.safetensors").write_text(run_id)
    (out / "model.json").write_text(json.dumps({"run_id": run_id, "test_accuracy": accuracy}))
    return {"status": status, "run_id": run_id, "test_accuracy": accuracy,
            "checkpoint": str(out / "model.safetensors")}


def test_keep_best_keeps_only_the_most_accurate(tmp_path: Path) -> None:
    assert keep_best(tmp_path, _checkpoint(tmp_path, "a", 0.5))
    assert not keep_best(tmp_path, _checkpoint(tmp_path, "b", 0.4))
    assert not keep_best(tmp_path, _checkpoint(tmp_path, "tie", 0.5))  # ties keep the earlier
    assert keep_best(tmp_path, _checkpoint(tmp_path, "c", 0.7))
    assert not keep_best(tmp_path, _checkpoint(tmp_path, "d", 0.9, status="failed"))
    assert (tmp_path / BEST_DIR / "model.safetensors").read_text() == "c"
    assert kept(tmp_path)["run_id"] == "c"
    # Whatever is not kept is deleted: the study folder holds one checkpoint in all.
    assert sorted(p.name for p in tmp_path.rglob("model.*")) == ["model.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST_DIR]
    assert not keep_best(tmp_path, {"status": "ok", "test_accuracy": 1.0})  # saved nothing


def test_compare_save_model_best(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def command(self: CellRunner, slot: Slot) -> list[str]:
        cfg = self.configs[slot.cell]
        assert cfg.save_model  # every run saves; compare keeps one
        assert self.plan.base.save_model
        accuracy = ACCURACY[(slot.cell.strategy, slot.cell.workers)] - 0.01 * slot.repeat
        record = make_record(cfg, measured={
            "train_s": 1.0, "samples_per_s": 100.0, "test_accuracy": accuracy, "comm_s": 0.0,
            "comm_fraction": 0.0, "history": [{"epoch": 1, "time_s": 1.0,
                                               "test_accuracy": accuracy}]})
        return [sys.executable, "-c", FAKE_RUN, str(self.out), json.dumps(record)]

    monkeypatch.setattr(CellRunner, "command", command)
    out = tmp_path / "study"
    assert main(["compare", "--strategies", "ddp", "--workers", "1,2", "--repeats", "2",
                 *COMPARE_TINY, "--save-model", "best", "--out", str(out), "--no-progress"]) == 0
    meta = kept(out)
    assert meta is not None and (meta["strategy"], meta["workers"]) == ("ddp", 2)
    assert meta["test_accuracy"] == pytest.approx(0.93)
    assert not (out / "model.safetensors").exists() and not (out / "model.json").exists()
    printed = " ".join(capsys.readouterr().out.split())  # as one line, whatever the wrapping
    assert "best model: " in printed and "(ddp ×2, run" in printed
    assert f"distbench serve {out / BEST_DIR}".replace(" ", "") in printed.replace(" ", "")


def test_save_model_takes_best_in_compare_and_no_value_in_run() -> None:
    parser = build_parser()
    assert parser.parse_args(["compare", "--save-model", "best"]).save_model == "best"
    assert parser.parse_args(["compare"]).save_model is None
    assert parser.parse_args(["run", "--save-model"]).save_model is True
    assert main(["compare", "--save-model", "all"]) == 2
    args = parser.parse_args(["compare", "--strategies", "single"])
    plan = compare.make_plan(compare_request(given_settings(args, STUDY_ONLY)))
    assert not plan.config(plan.cells()[0], Path("out")).save_model
