"""The run flags, and the one conversion between them and a `RunConfig`, both ways.

Command: distbench run --help      (the flags, grouped by concern)

`distbench run`, `worker`, `compare` and the flags after `launch ... --` all take these flags. Each
flag names the `RunConfig` field it sets, so one table adds the flags to a parser, turns parsed
arguments into a config, and spells a config back as flags (compare's "equivalent" command).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

from distbench.cli.parser import Arguments, Parser, changed_flags
from distbench.core.config import COMPRESSIONS, RunConfig
from distbench.core.errors import UsageError, unknown_name
from distbench.models import MODEL_NAMES

DEFAULTS = RunConfig()
CONFIG_HELP = "a RunConfig JSON file instead of the run flags"


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 1x28x28, got '{text}'")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _text(value: Any) -> str:
    """A value as its flag takes it: a shape as CxHxW, a float exactly (repr)."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class RunFlag:
    """One flag shared by every run of a study, and the `RunConfig` field it sets."""

    option: str
    field: str  # dotted for a nested config: "data.name"
    help: str | None = None
    type: Callable[[str], Any] | None = None
    switch: bool = False  # present or absent (store_true)
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")

    def get(self, cfg: RunConfig) -> Any:
        return reduce(getattr, self.field.split("."), cfg)

    def set(self, cfg: RunConfig, value: Any) -> None:
        *parents, name = self.field.split(".")
        setattr(reduce(getattr, parents, cfg), name, value)

    def add_to(self, group: Arguments) -> None:
        if self.switch:
            group.add_argument(self.option, action="store_true", help=self.help)
        else:
            group.add_argument(self.option, type=self.type, default=self.get(DEFAULTS),
                               help=self.help, metavar=self.metavar)

    def argv(self, cfg: RunConfig, everything: bool) -> list[str]:
        """The flag that gives `cfg` its value; nothing for a default unless `everything`."""
        value = self.get(cfg)
        if self.switch:
            return [self.option] if value else []
        if value is None or (value == self.get(DEFAULTS) and not everything):
            return []
        return [self.option, _text(value)]


WORKER_FLAGS = (
    RunFlag("--threads-per-worker", "threads_per_worker", "default: cores // workers", int),
    RunFlag("--backend", "backend",
            "torch.distributed backend (default: gloo on CPU, nccl on CUDA)"),
    RunFlag("--device", "device", "cpu or cuda (default: %(default)s)"),
    RunFlag("--timeout", "timeout", "seconds before the whole run is stopped", float),
)
DATA_FLAGS = (
    RunFlag("--dataset", "data.name",
            "a built-in name, folder:PATH (PATH/<class>/*.png|jpg, or PATH/train/<class>/ and "
            "PATH/test/<class>/) or npz:PATH (x_train, y_train, x_test, y_test) "
            "(default: %(default)s)"),
    RunFlag("--data-dir", "data.data_dir",
            "folder holding the dataset, used as given (default: $DISTBENCH_DATA, then the "
            "cache)"),
    RunFlag("--allow-partial-data", "data.allow_partial",
            "train on the CIFAR-10 batches present, recorded as partial", switch=True),
    RunFlag("--test-fraction", "data.test_fraction",
            "folder:PATH as one tree: the share held out for testing (default: %(default)s)",
            float),
    RunFlag("--synthetic-samples", "data.synthetic_samples", type=int),
    RunFlag("--synthetic-shape", "data.synthetic_shape", type=_shape, metavar="CxHxW"),
    RunFlag("--synthetic-classes", "data.synthetic_classes", type=int),
)
MODEL_FLAGS = (
    RunFlag("--model", "model.name",
            f"one of {', '.join(MODEL_NAMES)}, or your own: path/to/file.py:function or "
            "package.module:function, called as function((C, H, W), num_classes, 'torch' or "
            "'tf') and returning a torch.nn.Module or keras.Model that outputs logits; the loss "
            "is cross-entropy over them (default: %(default)s)"),
    RunFlag("--pretrained", "model.pretrained", "ImageNet weights (mobilenet_v2)", switch=True),
    RunFlag("--image-size", "model.image_size",
            "resize inputs to N x N (default: native size; folder: datasets with images of "
            "several sizes need it)", int),
    RunFlag("--compile", "model.compile", "torch.compile the model", switch=True),
)
TRAINING_FLAGS = (
    RunFlag("--epochs", "epochs", type=int),
    RunFlag("--batch-size", "batch_size",
            "global batch (strong scaling) or per-worker batch (weak)", int),
    RunFlag("--scaling", "scaling", "strong or weak (default: %(default)s)"),
    RunFlag("--optimizer", "optimizer", "adam or sgd (default: %(default)s)"),
    RunFlag("--lr", "lr", type=float),
    RunFlag("--momentum", "momentum", "sgd momentum", float),
    RunFlag("--weight-decay", "weight_decay", type=float),
    RunFlag("--seed", "seed", type=int),
    RunFlag("--warmup-steps", "warmup_steps", "steps run and undone before the clock starts",
            int),
    RunFlag("--calibration-steps", "calibration_steps",
            "steps with and without sync used to measure ddp's comm time", int),
    RunFlag("--target-accuracy", "target_accuracy",
            "report time to reach this test accuracy", float),
    RunFlag("--contention-threshold", "contention_threshold",
            "share of the cores other processes may use while a run is timed before it is "
            "marked contended (default: %(default)s)", float),
)
STRATEGY_OPTION_FLAGS = (
    RunFlag("--bucket-mb", "bucket_mb", "ddp/custom bucket size", float),
    RunFlag("--overlap", "overlap", "custom: all_reduce during backward", switch=True),
    RunFlag("--sync-every", "sync_every", "param-avg: steps between averages (default: epoch)",
            int),
    RunFlag("--average-optimizer-state", "average_optimizer_state", "param-avg", switch=True),
    RunFlag("--compression", "compression",
            f"lossy gradient compression: {' | '.join(COMPRESSIONS)} (ddp: all; custom: fp16, "
            "bf16; mpi: fp16; default: %(default)s)"),
    RunFlag("--powersgd-rank", "powersgd_rank", "rank of PowerSGD's factors (default: "
            "%(default)s)", int),
)
TF_FLAGS = (
    RunFlag("--tf-shuffle-buffer", "tf_shuffle_buffer",
            "tf.data shuffle buffer (default: the PyTorch rows' per-epoch permutation)", int),
    RunFlag("--tf-prefetch", "tf_prefetch", "batches prefetched (default: AUTOTUNE; 0: off)",
            int),
    RunFlag("--tf-collective-timeout", "tf_collective_timeout",
            "tf-multiworker: seconds before a barrier fails (default: %(default)s)", float),
)
# The groups after "strategy and workers", in the order `--help` shows them.
SHARED_GROUPS = (
    ("data", DATA_FLAGS),
    ("model", MODEL_FLAGS),
    ("training", TRAINING_FLAGS),
    ("strategy options", STRATEGY_OPTION_FLAGS),
    ("tensorflow rows (tf-*)", TF_FLAGS),
)
# Every flag that all runs of a study share; strategy, workers, output and progress are per run.
SHARED_FLAGS = WORKER_FLAGS + tuple(f for _, flags in SHARED_GROUPS for f in flags)


# --------------------------------------------------------------------------- flags -> parser


def _add_cell_flags(group: Arguments) -> None:
    """One run: one strategy at one worker count."""
    group.add_argument("--strategy", default=DEFAULTS.strategy,
                       help="training strategy (default: %(default)s)")
    group.add_argument("--workers", type=int, default=DEFAULTS.workers,
                       help="worker processes or replicas")


def _add_matrix_flags(group: Arguments) -> None:
    """A study (compare): lists of strategies and worker counts."""
    group.add_argument("--strategies", help="comma list, or all (default: every available strategy "
                       "except the sharded zero and fsdp)")
    group.add_argument("--workers", default="1,2",
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
    for flag in WORKER_FLAGS:
        flag.add_to(group)
    for title, flags in SHARED_GROUPS:
        group = parser.add_argument_group(title)
        for flag in flags:
            flag.add_to(group)
    _add_output_flags(parser.add_argument_group("output"), matrix)


# --------------------------------------------------------------------------- parsed -> config


def shared_config(args: argparse.Namespace) -> RunConfig:
    """A config with the shared flags of `args` set (the base of every run of a study)."""
    cfg = RunConfig()
    for flag in SHARED_FLAGS:
        flag.set(cfg, getattr(args, flag.dest))
    return cfg


def config_from_flags(args: argparse.Namespace) -> RunConfig:
    """The config of one run from its flags, not yet checked."""
    cfg = shared_config(args)
    cfg.strategy, cfg.workers, cfg.out = args.strategy, args.workers, args.out
    cfg.save_model, cfg.progress = args.save_model, not args.no_progress
    return cfg


def read_config(path: str) -> RunConfig:
    """A `RunConfig` JSON file (what compare and the local launcher hand their children)."""
    try:
        return RunConfig.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"--config {path}: not a readable RunConfig JSON file "
                         f"({type(exc).__name__}: {exc})") from None


def config_of(args: argparse.Namespace) -> RunConfig:
    """The run's config: the --config file, which then takes no run flags, else the flags."""
    if not args.config:
        return config_from_flags(args)
    given = changed_flags(args, add_run_flags)
    if given:
        raise UsageError(f"--config {args.config} holds every run setting; drop "
                         f"{', '.join(given)}")
    return read_config(args.config)


def check_config(cfg: RunConfig, load_strategy: bool = True, one_run: bool = True
                 ) -> RunConfig:
    """Validate the config, including every registry name.

    `load_strategy=False` checks the strategy name only, without importing its framework
    (processes that only plan runs must stay free of torch and TensorFlow). `one_run=False`:
    the shared settings of a study, whose strategy is not yet chosen (compare applies
    --compression to the strategies that implement it).
    """
    from distbench.data import DATASETS
    from distbench.data.user_data import check_source, is_user_dataset
    from distbench.models.user import check_spec, is_user_model, parse_spec
    from distbench.strategies import STRATEGIES, check_compression, check_options, get_strategy

    try:
        cfg.validate()
        names: list[tuple[str, str, list[str] | tuple[str, ...]]] = []
        if is_user_dataset(cfg.data.name):
            check_source(cfg.data.name)
        else:
            names.append(("dataset", cfg.data.name, list(DATASETS)))
        if is_user_model(cfg.model.name):
            check_spec(parse_spec(cfg.model.name))
        else:
            names.append(("model", cfg.model.name, MODEL_NAMES))
        if not load_strategy:
            names.append(("strategy", cfg.strategy, list(STRATEGIES)))
        for kind, name, known in names:
            if name not in known:
                raise unknown_name(kind, name, known)
        if one_run:
            check_compression(cfg.strategy, cfg.compression)
            check_options(cfg.strategy, cfg)
    except TypeError as exc:  # a hand-written --config file with a value of the wrong type
        raise UsageError(f"a run setting has the wrong type ({exc})") from None
    if load_strategy:
        get_strategy(cfg.strategy)
    return cfg


def check_run_argv(argv: Sequence[str]) -> RunConfig:
    """Parse and check run flags given as a list (what `launch ... --` hands every worker)."""
    parser = Parser(prog="distbench worker", add_help=False)
    add_run_flags(parser)
    return check_config(config_from_flags(parser.parse_args(list(argv))), load_strategy=False)


# --------------------------------------------------------------------------- config -> flags


def config_argv(cfg: RunConfig, everything: bool = False) -> list[str]:
    """The shared flags that give a run `cfg`'s settings; defaults left out unless `everything`.

    Strategy, workers, output and progress are left to the caller, which sets them per run.
    """
    return [arg for flag in SHARED_FLAGS for arg in flag.argv(cfg, everything)]
