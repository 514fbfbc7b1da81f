"""`distbench compare`: the study's flags, parsed into a `CompareRequest` for the library.

Command: distbench compare --strategies single,ddp --workers 1,2 --repeats 3 --dataset mnist-5k
"""

from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from distbench.cli.diff import parse_percent
from distbench.cli.flags import add_run_flags, check_config, config_argv, shared_config
from distbench.cli.parser import Subparsers, changed_flags, parse_counts, split_list
from distbench.core.errors import UsageError

if TYPE_CHECKING:
    from distbench.study.adaptive import AutoRepeats
    from distbench.study.compare import CompareRequest, Plan

# What `--resume` still takes: where the study is, and how it is shown.
NOT_STUDY_SETTINGS = ("resume", "out", "no_progress")


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_run_flags(parser, matrix=True)
    g = parser.add_argument_group("study")
    g.add_argument("--repeats", default="3",
                   help="runs per cell, or 'auto': rounds until every cell's 95%% interval is "
                   "within --target-ci (default: %(default)s)")
    g.add_argument("--target-ci", default="5%",
                   help="--repeats auto: relative half-width to reach (default: %(default)s)")
    g.add_argument("--max-repeats", type=int, default=10,
                   help="--repeats auto: at most this many rounds (default: %(default)s)")
    g.add_argument("--time-budget", help="--repeats auto: stop adding rounds before this much "
                   "time has passed, e.g. 20m, 1h, 600 (seconds)")
    g.add_argument("--rerun-contended", type=int, default=0, metavar="N",
                   help="run a run measured while other processes used the cores again, at "
                   "most N times (default: %(default)s, keep it)")
    g.add_argument("--resume", metavar="DIR", help="continue the study in DIR: run what is missing")
    g.add_argument(
        "--no-baseline",
        action="store_true",
        help="do not add single / tf-single when they are not listed",
    )


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("compare", help="run every strategy side by side and report")
    add_flags(p)
    p.set_defaults(func=run)


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
        *(["--no-baseline"] if listed_only else []),
        *config_argv(plan.base, everything=True),
        *(["--save-model", "best"] if plan.base.save_model else []), "--out", str(out)])


def parse_duration(text: str) -> float:
    """`20m`, `1h`, `90s` or plain seconds -> seconds (> 0)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    scale = units.get(text[-1:].lower(), 1.0)
    number = text[:-1] if text[-1:].lower() in units else text
    try:
        seconds = float(number) * scale
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < math.inf:
        raise UsageError(f"--time-budget expects a duration such as 20m, 1h or 600, got '{text}'")
    return seconds


def parse_repeats(args: argparse.Namespace) -> tuple[int, AutoRepeats | None]:
    """(rounds to plan first, the adaptive settings or None) from --repeats and its options."""
    from distbench.study.adaptive import FIRST_ROUNDS, AutoRepeats

    if args.repeats == "auto":
        budget = parse_duration(args.time_budget) if args.time_budget else None
        auto = AutoRepeats(parse_percent("--target-ci", args.target_ci), args.max_repeats, budget)
        return min(FIRST_ROUNDS, args.max_repeats), auto
    if not args.repeats.isdigit() or int(args.repeats) < 1:
        raise UsageError(f"--repeats expects an integer >= 1 or 'auto', got '{args.repeats}'")
    return int(args.repeats), None


def request_from_args(args: argparse.Namespace) -> CompareRequest:
    from distbench.report import COMPARE_FILE
    from distbench.study.compare import CompareRequest

    if args.resume:
        changed = changed_flags(args, add_flags, ignore=NOT_STUDY_SETTINGS)
        if changed:
            raise UsageError(f"--resume continues the study saved in {args.resume}/"
                             f"{COMPARE_FILE} and takes no study settings; drop "
                             f"{', '.join(changed)} (or start a new compare)")
    base = check_config(shared_config(args), load_strategy=False, one_run=False)
    strategies = split_list(args.strategies) if args.strategies else None
    if args.strategies and not strategies:
        raise UsageError(f"--strategies expects a comma-separated list of names, got "
                         f"'{args.strategies}'")
    repeats, auto = parse_repeats(args)
    return CompareRequest(
        base=base, equivalent=equivalent_command, strategies=strategies,
        workers=parse_counts("--workers", args.workers), repeats=repeats, auto=auto,
        rerun_contended=args.rerun_contended,
        out=Path(args.out) if args.out else None,
        resume=Path(args.resume) if args.resume else None, no_baseline=args.no_baseline,
        save_best=args.save_model == "best", progress=not args.no_progress,
        command=shlex.join(["distbench", *args.argv]) if getattr(args, "argv", None) else None)


def run(args: argparse.Namespace) -> int:
    """Every strategy x worker count x repeat, each run in a fresh process, then the report."""
    from distbench.study.compare import run_compare

    return run_compare(request_from_args(args))
