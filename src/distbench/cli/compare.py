"""`distbench compare`: the study's flags, parsed into a `CompareRequest` for the library.

Command: distbench compare --strategies single,ddp --workers 1,2 --repeats 3 --dataset mnist-5k
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from distbench.cli.flags import add_run_flags, check_config, config_argv, shared_config
from distbench.cli.parser import Subparsers, changed_flags, parse_counts, split_list
from distbench.core.errors import UsageError

if TYPE_CHECKING:
    from distbench.study.compare import CompareRequest, Plan

# What `--resume` still takes: where the study is, and how it is shown.
NOT_STUDY_SETTINGS = ("resume", "out", "no_progress")


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_run_flags(parser, matrix=True)
    g = parser.add_argument_group("study")
    g.add_argument("--repeats", type=int, default=3, help="runs per cell (default: %(default)s)")
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


def equivalent_command(plan: Plan, out: Path) -> str:
    """The compare command that redoes `plan` into `out`, with every setting spelled out."""
    from distbench.strategies import STRATEGIES
    from distbench.study.compare import with_baselines

    listed_only = with_baselines(plan.strategies, list(STRATEGIES)) != plan.strategies
    return shlex.join([
        "distbench", "compare", "--strategies", ",".join(plan.strategies),
        "--workers", ",".join(map(str, plan.workers)), "--repeats", str(plan.repeats),
        *(["--no-baseline"] if listed_only else []),
        *config_argv(plan.base, everything=True),
        *(["--save-model", "best"] if plan.base.save_model else []), "--out", str(out)])


def request_from_args(args: argparse.Namespace) -> CompareRequest:
    from distbench.report import COMPARE_FILE
    from distbench.study.compare import CompareRequest

    if args.resume:
        changed = changed_flags(args, add_flags, ignore=NOT_STUDY_SETTINGS)
        if changed:
            raise UsageError(f"--resume continues the study saved in {args.resume}/"
                             f"{COMPARE_FILE} and takes no study settings; drop "
                             f"{', '.join(changed)} (or start a new compare)")
    base = check_config(shared_config(args), load_strategy=False)
    strategies = split_list(args.strategies) if args.strategies else None
    if args.strategies and not strategies:
        raise UsageError(f"--strategies expects a comma-separated list of names, got "
                         f"'{args.strategies}'")
    return CompareRequest(
        base=base, equivalent=equivalent_command, strategies=strategies,
        workers=parse_counts("--workers", args.workers), repeats=args.repeats,
        out=Path(args.out) if args.out else None,
        resume=Path(args.resume) if args.resume else None, no_baseline=args.no_baseline,
        save_best=args.save_model == "best", progress=not args.no_progress,
        command=shlex.join(["distbench", *args.argv]) if getattr(args, "argv", None) else None)


def run(args: argparse.Namespace) -> int:
    """Every strategy x worker count x repeat, each run in a fresh process, then the report."""
    from distbench.study.compare import run_compare

    return run_compare(request_from_args(args))
