"""The run flags on a parser, and the settings a parsed command line gives.

Command: distbench run --help      (the flags, grouped by concern)

`distbench run`, `worker`, `compare` and the flags after `launch ... --` all take these flags.
The table itself (each flag, the `RunConfig` field it sets, its help) and the conversion of
settings to a config are `distbench.api.settings`', shared with `distbench.run()`: this module
only adds the table to argparse and hands back what was typed as a mapping of settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from distbench.api.settings import (
    RUN_ONLY,
    SHARED_GROUPS,
    STUDY_ONLY,
    WORKER_SETTINGS,
    Keyword,
    Setting,
    check_config,
    defaults,
    run_config,
)
from distbench.cli.parser import Arguments, Parser
from distbench.core.config import RunConfig

CONFIG_HELP = "a RunConfig JSON file instead of the run flags"


def _argparse_type(parse: Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    """The setting's text reader for argparse: its own message for a value it refuses."""
    if parse in (None, int, float):
        return parse

    def read(text: str) -> Any:
        try:
            return parse(text)  # type: ignore[misc]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return read


def add_setting(group: Arguments, setting: Setting) -> None:
    if setting.switch:
        group.add_argument(setting.flag, action="store_true", help=setting.help)
    else:
        group.add_argument(setting.flag, type=_argparse_type(setting.type),
                           default=setting.default, help=setting.help, metavar=setting.metavar)


def _add_cell_flags(group: Arguments) -> None:
    """One run: one strategy at one worker count."""
    group.add_argument("--strategy", default=RUN_ONLY["strategy"].default,
                       help="training strategy (default: %(default)s)")
    group.add_argument("--workers", type=int, default=RUN_ONLY["workers"].default,
                       help="worker processes or replicas")


def _add_matrix_flags(group: Arguments) -> None:
    """A study (compare): lists of strategies and worker counts."""
    group.add_argument("--strategies", help="comma list, or all (default: every available strategy "
                       "except the sharded zero and fsdp)")
    group.add_argument("--workers", default=STUDY_ONLY["workers"].default,
                       help="comma list of worker counts (default: %(default)s)")


def _add_output_flags(group: Arguments, matrix: bool) -> None:
    group.add_argument("--out", help="results directory (default: results/<UTC timestamp>/)")
    if matrix:
        group.add_argument(
            "--save-model", choices=["best"],
            help="best: keep the checkpoint of the most accurate ok run in --out/best-model/")
    else:
        group.add_argument("--save-model", action="store_true", help="keep a checkpoint in --out")
    group.add_argument("--no-progress", action="store_true", help="no live progress bar")


def add_run_flags(parser: argparse.ArgumentParser, matrix: bool = False) -> None:
    """The run flags; with `matrix` (compare), --strategies and --workers take comma lists."""
    group = parser.add_argument_group("strategy and workers")
    (_add_matrix_flags if matrix else _add_cell_flags)(group)
    for setting in WORKER_SETTINGS:
        add_setting(group, setting)
    for title, settings in SHARED_GROUPS:
        group = parser.add_argument_group(title)
        for setting in settings:
            add_setting(group, setting)
    _add_output_flags(parser.add_argument_group("output"), matrix)


def given_settings(args: argparse.Namespace, only: Mapping[str, Keyword]) -> dict[str, Any]:
    """The settings typed on the command line: those of `args` that differ from their default.

    `only` is RUN_ONLY (run, worker) or STUDY_ONLY (compare); what a command parses besides
    (a worker's --rank) is not a setting and is left out."""
    known = defaults(only)
    return {name: getattr(args, name) for name, default in known.items()
            if hasattr(args, name) and getattr(args, name) != default}


def config_of(args: argparse.Namespace) -> RunConfig:
    """The run's config: the --config file, which then takes no run flags, else the flags."""
    return run_config(given_settings(args, RUN_ONLY))


def check_run_argv(argv: Sequence[str]) -> RunConfig:
    """Parse and check run flags given as a list (what `launch ... --` hands every worker)."""
    parser = Parser(prog="distbench worker", add_help=False)
    add_run_flags(parser)
    return check_config(config_of(parser.parse_args(list(argv))), load_strategy=False)
