"""`distbench run`: train once with one strategy and record the result.

Command: distbench run --strategy ddp --workers 2 --dataset mnist-5k --epochs 1
"""

from __future__ import annotations

import argparse

from distbench.api.settings import RUN_ONLY
from distbench.cli.flags import CONFIG_HELP, add_run_flags, given_settings
from distbench.cli.parser import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("run", help="train once with one strategy and record the result")
    p.add_argument("--config", help=CONFIG_HELP)
    add_run_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train once with one strategy: `distbench.run()` with the typed flags as its settings."""
    from distbench.api.runs import launch_run

    launch_run(given_settings(args, RUN_ONLY))
    return 0
