"""`distbench report`: tables, plots and report.html again, from the records alone.

Command: distbench report results/A results/B --out results/merged
"""

from __future__ import annotations

import argparse
from pathlib import Path

from distbench.cli.parser import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="rebuild tables, plots and report.html from results dirs"
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results directories to merge")
    p.add_argument("--out", help="where to write (default: DIR when one, else results/<time>/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tables, plots and report.html again, from the JSON records of one or more directories."""
    from distbench.report import build_report
    from distbench.report.tables import print_terminal
    from distbench.results.records import check_out_dir, default_out_dir

    first = Path(args.dirs[0])
    # One input: the report goes beside its records (the folder of a runs.jsonl given directly).
    beside = first.parent if first.is_file() else first
    out = check_out_dir(args.out or (beside if len(args.dirs) == 1 else default_out_dir()))
    report = build_report(args.dirs, out)
    print_terminal(report.study, notes=report.notes)
    for skipped in report.skipped:
        print(f"skipped {skipped}")
    print("wrote " + ", ".join(str(p) for p in report.files))
    return 0
