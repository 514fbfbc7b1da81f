"""`distbench compare`: the study's flags, handed as settings to the study `distbench.compare()`
runs too.

Command: distbench compare --strategies single,ddp --workers 1,2 --repeats 3 --dataset mnist-5k
"""

from __future__ import annotations

import argparse
import shlex

from distbench.api.settings import STUDY_ONLY
from distbench.cli.flags import add_run_flags, given_settings
from distbench.cli.parser import Subparsers
from distbench.launch.warmstart import WORKER_STARTS


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_run_flags(parser, matrix=True)
    g = parser.add_argument_group("study")
    g.add_argument("--repeats", default=STUDY_ONLY["repeats"].default,
                   help="runs per cell, or 'auto': rounds until every cell's 95%% interval is "
                   "within --target-ci (default: %(default)s)")
    g.add_argument("--target-ci", default=STUDY_ONLY["target_ci"].default,
                   help="--repeats auto: relative half-width to reach (default: %(default)s)")
    g.add_argument("--max-repeats", type=int, default=STUDY_ONLY["max_repeats"].default,
                   help="--repeats auto: at most this many rounds (default: %(default)s)")
    g.add_argument("--time-budget", help="--repeats auto: stop adding rounds before this much "
                   "time has passed, e.g. 20m, 1h, 600 (seconds)")
    g.add_argument("--rerun-contended", type=int, default=STUDY_ONLY["rerun_contended"].default,
                   metavar="N",
                   help="run a run measured while other processes used the cores again, at "
                   "most N times (default: %(default)s, keep it)")
    g.add_argument("--worker-start", choices=WORKER_STARTS,
                   default=STUDY_ONLY["worker_start"].default,
                   help="fork: each worker is forked from an interpreter that has imported its "
                   "framework once for the whole study (the same for every row); exec: each "
                   "starts from a fresh interpreter, as distbench run does (default: "
                   "%(default)s)")
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


def typed_command(args: argparse.Namespace) -> str | None:
    """The command as typed, kept in compare.json."""
    argv = getattr(args, "argv", None)
    return shlex.join(["distbench", *argv]) if argv else None


def run(args: argparse.Namespace) -> int:
    """Every strategy x worker count x repeat, each run in a fresh process, then the report."""
    from distbench.api.runs import run_study

    code, _ = run_study(given_settings(args, STUDY_ONLY), command=typed_command(args))
    return code
