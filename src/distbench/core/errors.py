"""User-facing errors.

A `DistbenchError` is something the user can fix (a bad name, a missing file). The CLI prints its
message as one line and exits with `exit_code`, never a traceback.
"""


class DistbenchError(Exception):
    """An error whose message is a complete, one-line explanation for the user."""

    exit_code = 1


class UsageError(DistbenchError):
    """Bad input on the command line: an unknown name or an invalid value (exit code 2)."""

    exit_code = 2


def unknown_name(kind: str, name: str, known: "list[str] | tuple[str, ...]") -> UsageError:
    """The one error for every registry lookup, so each lists the valid names the same way."""
    return UsageError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(known))}")
