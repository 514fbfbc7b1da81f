"""One run and one study, from their settings: what `distbench run` / `distbench.run()` and
`distbench compare` / `distbench.compare()` both do once their input is a mapping of settings.

Command: distbench compare --strategies single,ddp --workers 1,2 --repeats 1 --dataset mnist-5k

Each function checks every setting before it writes anything or starts a process, ships a
callable model into the results folder (`api.model_code`), and hands the checked `RunConfig` or
`CompareRequest` to the launcher or to the study.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distbench.api.model_code import shipped_model
from distbench.api.settings import (
    NOT_STUDY_SETTINGS,
    RUN_ONLY,
    STUDY_ONLY,
    check_config,
    config_argv,
    given_beside,
    read_keyword,
    run_config,
    shared_config,
)
from distbench.core.errors import UsageError

if TYPE_CHECKING:
    from distbench.study.adaptive import AutoRepeats
    from distbench.study.compare import CompareRequest, Plan


# --------------------------------------------------------------------------- one run


def launch_run(settings: Mapping[str, Any]) -> tuple[dict[str, Any], Path]:
    """Train once on this machine; returns rank 0's record and the results folder.

    Bad settings are refused before anything starts; the launcher never imports the strategy's
    framework (its workers do: a second import here cost 1.4 s of torch, 5 s of TensorFlow)."""
    from distbench.results.records import check_out_dir, default_out_dir

    out = check_out_dir(read_keyword(settings, RUN_ONLY, "out") or default_out_dir())
    with shipped_model(settings, out) as settings:
        cfg = check_config(run_config(settings), load_strategy=False)
        from distbench.launch.local import launch

        cfg.out = cfg.out or str(out)
        record = launch(cfg)
    from distbench.training.worker import print_summary

    print_summary(record, cfg.out)
    return record, Path(cfg.out)


# --------------------------------------------------------------------------- a study


def repeat_argv(plan: Plan) -> list[str]:
    if plan.auto is None:
        return ["--repeats", str(plan.repeats)]
    budget = plan.auto.time_budget_s
    return ["--repeats", "auto", "--target-ci", f"{plan.auto.target_ci:.4g}",
            "--max-repeats", str(plan.auto.max_repeats),
            *(["--time-budget", f"{budget:g}"] if budget else [])]


def equivalent_command(plan: Plan, out: Path) -> str:
    """The compare command that redoes `plan` into `out`, with every setting spelled out."""
    from distbench.strategies import STRATEGIES
    from distbench.study.compare import with_baselines

    listed_only = with_baselines(plan.strategies, list(STRATEGIES)) != plan.strategies
    return shlex.join([
        "distbench", "compare", "--strategies", ",".join(plan.strategies),
        "--workers", ",".join(map(str, plan.workers)), *repeat_argv(plan),
        *(["--rerun-contended", str(plan.rerun_contended)] if plan.rerun_contended else []),
        *(["--worker-start", plan.worker_start] if plan.worker_start != "fork" else []),
        *(["--no-baseline"] if listed_only else []),
        *config_argv(plan.base, everything=True),
        *(["--save-model", "best"] if plan.base.save_model else []), "--out", str(out)])


def read_repeats(settings: Mapping[str, Any]) -> tuple[int, AutoRepeats | None]:
    """(rounds to plan first, the adaptive settings or None) from `repeats` and its options."""
    from distbench.study.adaptive import FIRST_ROUNDS, AutoRepeats

    repeats = read_keyword(settings, STUDY_ONLY, "repeats")
    if repeats != "auto":
        return int(repeats), None
    max_repeats = read_keyword(settings, STUDY_ONLY, "max_repeats")
    auto = AutoRepeats(read_keyword(settings, STUDY_ONLY, "target_ci"), max_repeats,
                       read_keyword(settings, STUDY_ONLY, "time_budget"))
    return min(FIRST_ROUNDS, max_repeats), auto


def compare_request(settings: Mapping[str, Any], command: str | None = None) -> CompareRequest:
    """The study asked for by `settings` (the given ones), checked, nothing written yet."""
    from distbench.report import COMPARE_FILE
    from distbench.study.compare import CompareRequest

    resume = read_keyword(settings, STUDY_ONLY, "resume")
    if resume:
        changed = given_beside(settings, NOT_STUDY_SETTINGS, STUDY_ONLY)
        if changed:
            raise UsageError(f"--resume continues the study saved in {resume}/{COMPARE_FILE} "
                             f"and takes no study settings; drop {', '.join(changed)} (or start "
                             "a new compare)")
    base = check_config(shared_config(settings), load_strategy=False, one_run=False)
    repeats, auto = read_repeats(settings)
    out = read_keyword(settings, STUDY_ONLY, "out")
    return CompareRequest(
        base=base, equivalent=equivalent_command,
        strategies=read_keyword(settings, STUDY_ONLY, "strategies"),
        workers=read_keyword(settings, STUDY_ONLY, "workers"), repeats=repeats, auto=auto,
        rerun_contended=read_keyword(settings, STUDY_ONLY, "rerun_contended"),
        worker_start=read_keyword(settings, STUDY_ONLY, "worker_start"),
        out=Path(out) if out else None, resume=Path(resume) if resume else None,
        no_baseline=read_keyword(settings, STUDY_ONLY, "no_baseline"),
        save_best=read_keyword(settings, STUDY_ONLY, "save_model") == "best",
        progress=not read_keyword(settings, STUDY_ONLY, "no_progress"), command=command)


def run_study(settings: Mapping[str, Any], command: str | None = None) -> tuple[int, Path]:
    """Every strategy x worker count x repeat, then the report; returns compare's exit code
    (0, or 130 when interrupted) and the study's folder."""
    from distbench.results.records import check_out_dir, default_out_dir
    from distbench.study.compare import open_study, run_compare

    resume = read_keyword(settings, STUDY_ONLY, "resume")
    out = check_out_dir(resume or read_keyword(settings, STUDY_ONLY, "out") or default_out_dir(),
                        "--resume" if resume else "--out")
    with shipped_model(settings, out) as settings:
        request = compare_request(settings, command)
        if not request.resume:
            request = replace(request, out=out)
        # Only reads: a folder that holds another study is refused before the code shipped
        # into it is kept.
        open_study(request)
    return run_compare(request), out
