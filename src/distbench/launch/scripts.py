"""What the cluster script writers share: the worker command line, quoted for a shell.

Every user value goes through `shlex.quote`; only the variables the scheduler sets at run time
(`$SLURM_JOB_ID`, ...) are left for the shell to expand, and those are written by us.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from distbench.data.user_data import is_user_dataset
from distbench.models.user import is_user_model, parse_spec
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
    """The last value given to `flag` (`--flag V` or `--flag=V`), as the parser would take it."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def user_paths(run_args: Sequence[str]) -> list[str]:
    """The files the workers will read as the flags name them: a user model's file and a user
    dataset's folder or npz file. The job opens them from its own working directory, so a
    relative one must exist there too."""
    paths = []
    model = flag_value(run_args, "--model")
    if model and is_user_model(model):
        spec = parse_spec(model)
        if spec.path is not None:
            paths.append(str(spec.path))
    dataset = flag_value(run_args, "--dataset")
    if dataset and is_user_dataset(dataset):
        paths.append(dataset.split(":", 1)[1])
    return paths


def relative_user_paths(run_args: Sequence[str]) -> list[str]:
    return [p for p in user_paths(run_args) if not Path(p).expanduser().is_absolute()]
