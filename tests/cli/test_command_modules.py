"""The CLI only parses: one module per command, one table of run flags, typed requests out.

Command: python -m pytest tests/cli/test_command_modules.py

In process and quick: nothing here trains. What a command does with its request is tested with
the library (tests/unit/study/test_compare_request.py for compare).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from distbench.api import settings
from distbench.api.runs import compare_request, equivalent_command
from distbench.cli.flags import given_settings
from distbench.cli.main import COMMANDS, build_parser, main
from distbench.cli.project import request_from_args as project_request
from distbench.comm.cost_model import Link
from distbench.comm.project import Workload
from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.results.records import append_record, make_record
from distbench.study.compare import make_plan

# Set per run (or by compare itself), so not among the flags a study shares.
PER_RUN = {"strategy", "workers", "out", "save_model", "progress"}
EVERY_SETTING = RunConfig(
    threads_per_worker=3, backend="gloo", timeout=12.5,
    data=DataConfig("synthetic", "/data", True, test_fraction=0.25, synthetic_samples=100,
                    synthetic_shape=(3, 8, 8), synthetic_classes=4),
    model=ModelConfig("cnn", True, 32, True), epochs=2, batch_size=48, scaling="weak",
    optimizer="sgd", lr=0.1 + 0.2, momentum=0.5, weight_decay=1e-4, seed=7, warmup_steps=1,
    calibration_steps=2, target_accuracy=0.9, bucket_mb=1.5, overlap=True, sync_every=5,
    average_optimizer_state=True, tf_shuffle_buffer=100, tf_prefetch=0,
    tf_collective_timeout=30.0)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("distbench: error: ") and err.count("\n") == 1, err
    return err


def leaf_fields(cls: type, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for f in fields(cls):
        default = getattr(cls(), f.name)
        out |= (leaf_fields(type(default), f"{prefix}{f.name}.") if is_dataclass(default)
                else {prefix + f.name})
    return out


def test_every_command_is_a_module_with_add_parser_and_run() -> None:
    for module in COMMANDS:
        assert callable(module.add_parser) and callable(module.run), module.__name__
    help_text = build_parser().format_help()
    for name in ("run", "worker", "compare", "report", "predict", "serve", "bench-comm",
                 "project", "launch", "env"):
        assert name in help_text


def test_every_run_setting_has_exactly_one_flag() -> None:
    """A new RunConfig field without a flag (or with two) fails here, not in a study."""
    shared = [s.field for s in settings.SHARED_SETTINGS]
    assert len(shared) == len(set(shared))
    assert set(shared) == leaf_fields(RunConfig) - PER_RUN


def test_a_config_spelled_as_flags_parses_back_to_itself() -> None:
    argv = settings.config_argv(EVERY_SETTING)
    assert "--tf-prefetch" in argv and "--device" not in argv  # 0 is a value; cpu the default
    args = build_parser().parse_args(["run", *argv])
    assert settings.shared_config(given_settings(args, settings.RUN_ONLY)) == EVERY_SETTING
    assert settings.config_argv(RunConfig()) == []
    everything = settings.config_argv(RunConfig(), everything=True)
    assert "--device" in everything and "--overlap" not in everything


def test_compare_request_is_typed_and_its_equivalent_redoes_the_plan(tmp_path: Path) -> None:
    argv = ["compare", "--strategies", "ddp", "--no-baseline", "--workers", "2,1,2", "--epochs",
            "2", "--lr", "0.0125", "--synthetic-shape", "3x8x8", "--save-model", "best"]
    request = compare_request(given_settings(build_parser().parse_args(argv), settings.STUDY_ONLY))
    assert (request.strategies, request.workers, request.save_best) == (["ddp"], [1, 2], True)
    assert (request.base.epochs, request.base.lr, request.command) == (2, 0.0125, None)
    plan = make_plan(request)
    assert plan.strategies == ["ddp"] and plan.base.save_model
    again = shlex.split(equivalent_command(plan, tmp_path))
    assert again[:2] == ["distbench", "compare"] and again[-2:] == ["--out", str(tmp_path)]
    args = build_parser().parse_args(again[1:])
    assert make_plan(compare_request(given_settings(args, settings.STUDY_ONLY))) == plan


@pytest.mark.parametrize("argv, message", [
    (["run", "--", "--epochs", "2"], "only distbench launch passes flags on"),
    (["launch", "compose", "--strategy", "ddp", "--", "--epochs", "0"], "--epochs must be >= 1"),
    (["launch", "compose", "--strategy", "ddp", "--", "--rank", "0"], "--rank"),
    (["compare", "--strategies", ",", "--workers", "1"], "--strategies expects"),
    (["project", "--compute-s", "1", "--grad-bytes", "1MB", "--bandwidth", "1GB/s",
      "--latency", "1us", "--workers", "8,x"], "--workers expects"),
])
def test_bad_input_is_one_line(argv: list[str], message: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_launch_hands_the_flags_after_the_separator_to_the_workers(tmp_path: Path) -> None:
    assert main(["launch", "compose", "--strategy", "ddp", "--dir", str(tmp_path), "--",
                 "--epochs", "1", "--dataset", "synthetic"]) == 0
    assert "--dataset" in (tmp_path / "docker-compose.yml").read_text()


def test_run_config_file_takes_no_run_flags(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(RunConfig(out=str(tmp_path / "out")).to_dict()))
    assert main(["run", "--config", str(path), "--epochs", "2", "--no-progress"]) == 2
    assert "drop --epochs, --no-progress" in one_line_error(capsys)
    for text in ("[1]", '{"epochs": "two"}', '{"data": {"name": ["x"]}}', "{"):
        path.write_text(text)
        assert main(["run", "--config", str(path)]) == 2
        one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_resume_of_an_unreadable_study_is_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compare.json").write_text('{"plan": ')
    assert main(["compare", "--resume", str(tmp_path)]) == 2
    assert "cannot resume" in one_line_error(capsys)


def test_report_warns_about_an_unreadable_compare_json(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = RunConfig(data=DataConfig("synthetic"), out=str(tmp_path))
    append_record(tmp_path, make_record(cfg, measured={
        "train_s": 1.0, "samples_per_s": 10.0, "test_accuracy": 0.5, "comm_s": 0.0,
        "comm_fraction": 0.0, "history": [{"epoch": 1, "time_s": 1.0, "test_accuracy": 0.5}]}))
    (tmp_path / "compare.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"skipped {tmp_path / 'compare.json'}: not readable JSON" in " ".join(out.split())


def test_project_request_is_typed(tmp_path: Path) -> None:
    parse = build_parser().parse_args
    given = project_request(parse(["project", str(tmp_path), "--workers", "64,8", "--bandwidth",
                                   "1GB/s", "--latency", "1us", "--strategies", "ddp,mpi"]))
    assert isinstance(given.network, Link) and given.inputs == tmp_path
    assert (given.workers, given.strategies) == ([8, 64], ["ddp", "mpi"])
    typed = project_request(parse(["project", "--compute-s", "0.5", "--grad-bytes", "1KB",
                                   "--from-bench-comm", "b.json", "--scaling", "weak"]))
    assert typed.network == Path("b.json") and isinstance(typed.inputs, Workload)
    assert (typed.inputs.grad_bytes, typed.inputs.scaling) == (1024, "weak")
