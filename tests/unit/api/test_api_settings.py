"""The settings of `distbench.run()` / `distbench.compare()`: keywords to config, the same as flags.

Command: python -m pytest tests/unit/api/test_api_settings.py

In process and quick: nothing here trains or writes a results folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import distbench
from distbench.api.runs import compare_request
from distbench.api.settings import (
    RUN_ONLY,
    SHARED_SETTINGS,
    STUDY_ONLY,
    check_config,
    run_config,
)
from distbench.cli.flags import given_settings
from distbench.cli.main import build_parser
from distbench.core.config import RunConfig
from distbench.core.errors import UsageError


def test_every_setting_is_its_flag_without_dashes() -> None:
    assert {s.keyword for s in SHARED_SETTINGS} >= {"batch_size", "synthetic_shape", "lr"}
    for setting in SHARED_SETTINGS:
        assert setting.flag == "--" + setting.keyword.replace("_", "-")


def test_keywords_give_the_config_the_same_flags_give() -> None:
    argv = ["run", "--strategy", "ddp", "--workers", "2", "--dataset", "synthetic",
            "--synthetic-shape", "3x8x8", "--epochs", "2", "--lr", "0.05", "--overlap",
            "--target-accuracy", "0.5", "--no-progress", "--out", "somewhere"]
    from_flags = run_config(given_settings(build_parser().parse_args(argv), RUN_ONLY))
    as_python = run_config({"strategy": "ddp", "workers": 2, "dataset": "synthetic",
                            "synthetic_shape": (3, 8, 8), "epochs": 2, "lr": 0.05,
                            "overlap": True, "target_accuracy": 0.5, "no_progress": True,
                            "out": Path("somewhere")})
    as_text = run_config({"strategy": "ddp", "workers": "2", "dataset": "synthetic",
                          "synthetic_shape": "3x8x8", "epochs": "2", "lr": "0.05",
                          "overlap": True, "target_accuracy": "0.5", "no_progress": True,
                          "out": "somewhere"})
    assert from_flags == as_python == as_text
    assert (as_python.workers, as_python.data.synthetic_shape, as_python.progress) == (
        2, (3, 8, 8), False)
    assert run_config({}) == RunConfig()


def test_study_keywords_take_lists_or_the_flags_text() -> None:
    listed = compare_request({"strategies": ["ddp", "single"], "workers": [2, 1, 2],
                              "repeats": 2, "save_model": "best", "epochs": 1})
    typed = compare_request({"strategies": "ddp,single", "workers": "1,2", "repeats": "2",
                             "save_model": "best", "epochs": "1"})
    assert listed == typed
    assert (listed.strategies, listed.workers, listed.repeats, listed.save_best) == (
        ["ddp", "single"], [1, 2], 2, True)
    auto = compare_request({"repeats": "auto", "target_ci": 0.1, "time_budget": "2m"})
    assert auto.auto is not None and (auto.auto.target_ci, auto.auto.time_budget_s) == (0.1, 120.0)


@pytest.mark.parametrize("call, keyword, hint", [
    (distbench.run, "epoch", "did you mean epochs"),
    (distbench.run, "strategies", "did you mean strategy"),
    (distbench.compare, "batchsize", "did you mean batch_size"),
    (distbench.compare, "flux_capacitor", "see help(distbench.compare)"),
])
def test_an_unknown_keyword_is_one_line_naming_it_and_close_matches(
        call, keyword: str, hint: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        call(**{keyword: 1, "out": tmp_path / "out"})
    message = str(caught.value)
    assert f"unknown setting '{keyword}'" in message and hint in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 1.5}, "--epochs expects an integer, got 1.5"),
    ({"overlap": "yes"}, "--overlap expects True or False"),
    ({"synthetic_shape": (1, 28)}, "--synthetic-shape expects CxHxW"),
    ({"synthetic_shape": "1x28"}, "--synthetic-shape expected CxHxW"),
    ({"dataset": 5}, "--dataset expects a string"),
    ({"epochs": 0}, "--epochs must be >= 1"),
    ({"model": "nope"}, "unknown model 'nope'"),
])
def test_a_bad_value_is_the_commands_one_line(settings: dict, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_config(run_config(settings))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("settings, message", [
    ({"workers": "1,x"}, "--workers expects comma-separated integers"),
    ({"workers": [0]}, "--workers expects"),
    ({"strategies": []}, "--strategies expects strategy names"),
    ({"repeats": 0}, "--repeats expects an integer >= 1 or 'auto'"),
    ({"repeats": "auto", "target_ci": "x"}, "--target-ci expects a percentage"),
    ({"save_model": "all"}, "--save-model expects 'best'"),
    ({"resume": "old", "epochs": 2}, "takes no study settings; drop --epochs"),
])
def test_a_bad_study_setting_is_one_line(settings: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        compare_request(settings)


def test_a_config_file_takes_no_other_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(RunConfig(epochs=2).to_dict()))
    assert run_config({"config": path}).epochs == 2
    with pytest.raises(UsageError, match="holds every run setting; drop --epochs, --no-progress"):
        run_config({"config": str(path), "epochs": 4, "no_progress": True})


def test_study_keywords_are_refused_by_run_and_run_keywords_by_compare(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown setting 'repeats'"):
        distbench.run(repeats=1)
    with pytest.raises(UsageError, match="unknown setting 'strategy'; did you mean strategies"):
        distbench.compare(strategy="ddp")
    with pytest.raises(UsageError, match="needs at least one results folder"):
        distbench.report()
    assert STUDY_ONLY.keys() & RUN_ONLY.keys() == {"workers", "out", "save_model", "no_progress"}
