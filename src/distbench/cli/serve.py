"""`distbench serve`: a Gradio page that classifies uploaded images with a checkpoint.

Command: distbench serve results/<timestamp>/best-model/
"""

from __future__ import annotations

import argparse

from distbench.cli.parser import Subparsers, add_checkpoint_arg


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("serve", help="a Gradio page that classifies uploaded images")
    add_checkpoint_arg(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s, this machine only)",
    )
    p.add_argument("--port", type=int, default=7860, help="default: %(default)s")
    p.add_argument(
        "--share",
        action="store_true",
        help="also open a public gradio.live link (off unless given)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """A Gradio page for a checkpoint; local only unless --host / --share say otherwise."""
    from distbench.serving.serve import serve

    serve(args.checkpoint, host=args.host, port=args.port, share=args.share,
          trust_code=args.trust_code)
    return 0
