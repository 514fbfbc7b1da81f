"""`distbench env`: the machine fingerprint stored with every result.

Command: distbench env
"""

from __future__ import annotations

import argparse
import json

from distbench.cli.parser import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("env", help="print the machine fingerprint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the machine fingerprint stored with every result."""
    from distbench.system.fingerprint import fingerprint

    print(json.dumps(fingerprint(), indent=2))
    return 0
