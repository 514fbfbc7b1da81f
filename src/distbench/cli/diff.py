"""`distbench diff OLD NEW`: benchstat for two result sets; exit 1 on a significant regression.

Command: distbench diff results/before results/after [--format md] [--fail-on-regression 5%]
"""

from __future__ import annotations

import argparse

from distbench.api.settings import parse_percent
from distbench.cli.parser import Subparsers

FORMATS = ("terminal", "md", "json")


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("diff", help="compare two result sets cell by cell (benchstat)")
    p.add_argument("old", metavar="OLD", help="results directory or runs.jsonl before")
    p.add_argument("new", metavar="NEW", help="results directory or runs.jsonl after")
    p.add_argument("--format", default="terminal", choices=FORMATS,
                   help="terminal table, markdown or JSON (default: %(default)s)")
    p.add_argument("--fail-on-regression", metavar="PCT",
                   help="exit 1 when a cell is significantly slower by more than PCT, e.g. 5%%")
    p.add_argument("--across-versions", action="store_true",
                   help="compare cells whose framework versions differ (a library upgrade)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from distbench.report import diff
    from distbench.report.analysis import load_dirs

    threshold = (parse_percent("--fail-on-regression", args.fail_on_regression)
                 if args.fail_on_regression is not None else None)
    result = diff.diff_records(load_dirs([args.old]), load_dirs([args.new]),
                               across_versions=args.across_versions)
    if args.format == "md":
        print(diff.markdown(result), end="")
    elif args.format == "json":
        print(diff.to_json(result), end="")
    else:
        diff.print_terminal(result, Console(highlight=False))
    if threshold is not None and result.regressions(threshold):
        worst = max(result.regressions(threshold), key=lambda r: r.change)
        print(f"regression: {worst.cell} is {worst.change:.1%} slower (p={worst.p_value:.3f}), "
              f"more than {threshold:.0%}")
        return 1
    return 0
