"""User-facing errors.

A `DistbenchError` is something the user can fix (a bad name, a missing file). The CLI prints its
message as one line and exits with `exit_code`, never a traceback.
"""

import os


class DistbenchError(Exception):
    """An error whose message is a complete, one-line explanation for the user."""

    exit_code = 1


class UsageError(DistbenchError):
    """Bad input on the command line: an unknown name or an invalid value (exit code 2)."""

    exit_code = 2


class DistbenchWarning(UserWarning):
    """Something the user should know that did not stop the command; the CLI prints its message
    as one `distbench: warning:` line."""


# How the CLI prints a DistbenchError; launchers read it back from a child's log.
ERROR_PREFIX = "distbench: error: "


# `distbench --debug` sets it for its own process and the workers it starts.
DEBUG_VAR = "DISTBENCH_DEBUG"


def debugging() -> bool:
    """Whether errors should come with their tracebacks (`--debug`)."""
    return os.environ.get(DEBUG_VAR) == "1"


def error_line(message: str) -> str:
    """The one line the CLI writes to stderr for an error."""
    return f"{ERROR_PREFIX}{message}\n"


def warning_line(message: str) -> str:
    """The one line the CLI writes to stderr for a `DistbenchWarning`."""
    return f"distbench: warning: {message}\n"


def last_error(lines: list[str]) -> str | None:
    """The message of the last `distbench: error:` line of a child's output, if any."""
    errors = [ln.strip().removeprefix(ERROR_PREFIX) for ln in lines
              if ln.strip().startswith(ERROR_PREFIX)]
    return errors[-1] if errors else None


def unknown_name(kind: str, name: str, known: "list[str] | tuple[str, ...]") -> UsageError:
    """The one error for every registry lookup, so each lists the valid names the same way."""
    return UsageError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(known))}")
