"""`distbench predict`: the top-3 classes of image files, from a saved checkpoint.

Command: distbench predict results/<timestamp>/ digit.png
"""

from __future__ import annotations

import argparse
import sys

from distbench.cli.parser import Subparsers, add_checkpoint_arg


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("predict", help="classify image files with a saved checkpoint")
    add_checkpoint_arg(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--json", action="store_true", help="print JSON instead of one line per image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Top-3 classes for each image file from a saved checkpoint."""
    from distbench.serving.predict import run_predict

    return run_predict(args.checkpoint, args.images, args.json, sys.stdout, sys.stderr,
                       args.trust_code)
