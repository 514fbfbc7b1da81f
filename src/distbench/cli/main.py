"""The `distbench` command: one function per subcommand, flags grouped by concern.

Command: distbench --help

The CLI only parses: each command module (`cli.run`, `cli.compare`, ...) turns its flags into a
typed request (a `RunConfig`, a `CompareRequest`, ...) and calls the library. Anything the user
can fix is reported as one line and a non-zero exit (2 for bad input), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from distbench import __version__
from distbench.cli import (
    bench_comm,
    cluster,
    compare,
    diff,
    env,
    launch,
    predict,
    project,
    report,
    run,
    serve,
    worker,
)
from distbench.cli.parser import Parser
from distbench.core.errors import (
    DEBUG_VAR,
    DistbenchError,
    DistbenchWarning,
    UsageError,
    debugging,
    error_line,
    warning_line,
)

# In the order `distbench --help` lists them.
COMMANDS = (run, worker, compare, report, diff, predict, serve, bench_comm, project, launch,
            cluster, env)

__all__ = ["Parser", "build_parser", "main"]


def build_parser() -> Parser:
    parser = Parser(prog="distbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"distbench {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="errors with their full traceback (also from the workers)")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


_python_show_warning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """`DistbenchWarning`s as one line, like errors; any other warning as Python shows it."""
    if issubclass(category, DistbenchWarning):
        sys.stderr.write(warning_line(str(message)))
        sys.stderr.flush()
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    try:
        typed = list(sys.argv[1:] if argv is None else argv)
        # `distbench launch ... -- <run flags>`: what follows `--` is for the workers. A command
        # that passes flags on says so with a `run_args` default; the others refuse them.
        cut = typed.index("--") if "--" in typed else len(typed)
        args = build_parser().parse_args(typed[:cut])
        if args.debug:
            os.environ[DEBUG_VAR] = "1"
        if cut < len(typed) and not hasattr(args, "run_args"):
            raise UsageError(f"only distbench launch passes flags on after --; got "
                             f"{shlex.join(typed[cut:])}")
        args.run_args = typed[cut + 1 :]
        args.argv = typed  # the command as typed
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except DistbenchError as exc:
        if debugging():
            traceback.print_exception(exc)
        # Bad input is one line even when it echoes a value typed with a newline in it.
        message = str(exc).replace("\n", "\\n") if isinstance(exc, UsageError) else str(exc)
        # One write, so lines from several ranks sharing a stream never interleave mid-line.
        sys.stderr.write(error_line(message))
        sys.stderr.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        print("distbench: interrupted", file=sys.stderr)
        return 130
