"""What the cluster script writers share: the worker command line, quoted for a shell.

Every user value goes through `shlex.quote`; only the variables the scheduler sets at run time
(`$SLURM_JOB_ID`, ...) are left for the shell to expand, and those are written by us.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from distbench.strategies import STRATEGIES, Launcher


def launched_by(*kinds: Launcher) -> list[str]:
    """The registered strategies whose workers start the way `kinds` say, in registry order."""
    return [name for name, info in STRATEGIES.items() if info.launcher in kinds]


def quote(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def worker_args(strategy: str, run_args: Sequence[str]) -> list[str]:
    """`-m distbench worker --strategy S <run flags>`, the part after the interpreter."""
    return ["-m", "distbench", "worker", "--strategy", strategy, *run_args]


def has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value of the last `flag V` or `flag=V` in `args`, None when absent."""
    value = None
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(flag + "="):
            value = a.removeprefix(flag + "=")
    return value
