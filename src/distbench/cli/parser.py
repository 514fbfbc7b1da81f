"""The parser every `distbench` command is built on, and the small value parsers commands share.

`cli.main` builds the top-level parser from it; the command modules use it where they parse on
their own (the run flags after `launch ... --`, the defaults a `--resume` is checked against),
which they cannot take from `cli.main` without importing the module that imports them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
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


def split_list(text: str) -> list[str]:
    """`a, b,,a` -> ['a', 'b']: stripped, empty items and repeats dropped, order kept."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def parse_counts(flag: str, text: str) -> list[int]:
    """`1,2,4` -> sorted distinct integers >= 1 (worker counts)."""
    parts = split_list(text)
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise UsageError(f"{flag} expects comma-separated integers >= 1 such as 1,2,4, "
                         f"got '{text}'")
    return sorted({int(p) for p in parts})


def changed_flags(args: argparse.Namespace, add_flags: Callable[[argparse.ArgumentParser], None],
                  ignore: Collection[str] = ()) -> list[str]:
    """The flags added by `add_flags` whose value in `args` is not their default, as `--name`."""
    fresh = Parser(add_help=False)
    add_flags(fresh)
    defaults = vars(fresh.parse_args([]))
    return ["--" + dest.replace("_", "-") for dest, default in sorted(defaults.items())
            if dest not in ignore and getattr(args, dest) != default]
