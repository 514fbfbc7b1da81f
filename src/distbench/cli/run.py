"""`distbench run`: train once with one strategy and record the result.

Command: distbench run --strategy ddp --workers 2 --dataset mnist-5k --epochs 1
"""

from __future__ import annotations

import argparse

from distbench.cli.flags import CONFIG_HELP, add_run_flags, check_config, config_of
from distbench.cli.parser import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("run", help="train once with one strategy and record the result")
    p.add_argument("--config", help=CONFIG_HELP)
    add_run_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train once with one strategy; the launcher starts and watches the workers."""
    # Check first: bad input is reported before the launcher's imports (torch) are paid for.
    cfg = check_config(config_of(args))
    from distbench.launch.local import launch
    from distbench.results.records import check_out_dir, default_out_dir
    from distbench.training.worker import print_summary

    cfg.out = str(check_out_dir(cfg.out or default_out_dir()))
    print_summary(launch(cfg), cfg.out)
    return 0
