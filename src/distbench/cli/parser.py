"""The parser every `distbench` command is built on.

`cli.main` builds the top-level parser from it; the command modules use it where they parse on
their own (the run flags after `launch ... --`), which they cannot take from `cli.main` without
importing the module that imports them. The value parsers commands share (comma lists, worker
counts, percentages) are `distbench.api.settings`', shared with the Python API.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol

from distbench.core.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: `distbench: error: ...`, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


class Arguments(Protocol):
    """A parser or an argument group: what flags are added to."""

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action: ...


class Subparsers(Protocol):
    """What a command module's `add_parser` receives: argparse's `add_subparsers()` result."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_checkpoint_arg(p: Arguments) -> None:
    """The checkpoint argument of `predict` and `serve`."""
    p.add_argument(
        "checkpoint",
        metavar="CKPT",
        help="model.safetensors / model.keras, its model.json, or their folder",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="a checkpoint of your own model (--model file.py:fn) is rebuilt by running that "
        "code: allow it (refused anyway if the file changed since training)",
    )
