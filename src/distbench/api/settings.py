"""The settings of a run and of a study, one table for the command line and for Python.

Command: distbench run --help      (the same settings, as flags grouped by concern)

Every setting has a flag (`--batch-size`) and a keyword (`batch_size`: the flag without its dashes,
dashes as underscores). `distbench run`, `worker`, `compare` and the flags after `launch ... --`
add the flags to their parsers from this table (`cli.flags`); `distbench.run(**settings)` and
`distbench.compare(**settings)` take the keywords. Both hand this module a mapping of the
settings that were given, and it turns them into a `RunConfig` (or a study's settings) and
checks them, so the two fronts accept and refuse exactly the same things, with the same words.

A value may be what the flag's text means (`workers="1,2"`, `synthetic_shape="1x28x28"`) or the
Python value (`workers=[1, 2]`, `synthetic_shape=(1, 28, 28)`). Messages name the flag, the one
spelling both fronts share.

This module imports no framework and no argparse: it is on the path of every command's startup.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

from distbench.core.config import COMPRESSIONS, RunConfig
from distbench.core.errors import UsageError, unknown_name
from distbench.launch.warmstart import WORKER_STARTS
from distbench.models import MODEL_NAMES

DEFAULTS = RunConfig()


def flag_of(keyword: str) -> str:
    return "--" + keyword.replace("_", "-")


# --------------------------------------------------------------------------- reading values


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


def parse_percent(flag: str, text: str) -> float:
    """`5%` or `0.05` -> 0.05; a one-line error for anything else."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{flag} expects a percentage such as 5%, got '{text}'") from None
    if not 0 <= value < 10:
        raise UsageError(f"{flag} must be between 0% and 1000%, got '{text}'")
    return value


def parse_duration(flag: str, text: str) -> float:
    """`20m`, `1h`, `90s` or plain seconds -> seconds (> 0)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    scale = units.get(text[-1:].lower(), 1.0)
    number = text[:-1] if text[-1:].lower() in units else text
    try:
        seconds = float(number) * scale
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < math.inf:
        raise UsageError(f"{flag} expects a duration such as 20m, 1h or 600, got '{text}'")
    return seconds


def parse_shape(text: str) -> tuple[int, int, int]:
    """`1x28x28` -> (1, 28, 28); ValueError (the parser's wording) for anything else."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"expected CxHxW such as 1x28x28, got '{text}'")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _wrong(flag: str, expected: str, value: Any) -> UsageError:
    return UsageError(f"{flag} expects {expected}, got {value!r}")


def read_text(flag: str, value: Any) -> str:
    """A name or a path: a string, or an `os.PathLike` (a `pathlib.Path`)."""
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise _wrong(flag, "a string", value)


def read_int(flag: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise _wrong(flag, "an integer", value)


def read_float(flag: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _wrong(flag, "a number", value)


def read_switch(flag: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _wrong(flag, "True or False", value)


def read_shape(flag: str, value: Any) -> tuple[int, int, int]:
    if isinstance(value, str):
        try:
            return parse_shape(value)
        except ValueError as exc:
            raise UsageError(f"{flag} {exc}") from None
    if (isinstance(value, (tuple, list)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return tuple(value)  # type: ignore[return-value]
    raise _wrong(flag, "CxHxW such as 1x28x28 or (1, 28, 28)", value)


Reader = Callable[[str, Any], Any]


def read_optional(read: Reader) -> Reader:
    """`read`, and None as the setting's absence (its default)."""
    return lambda flag, value: None if value is None else read(flag, value)


# --------------------------------------------------------------------------- the run settings


@dataclass(frozen=True)
class Setting:
    """One setting shared by every run of a study, and the `RunConfig` field it sets."""

    flag: str
    field: str  # dotted for a nested config: "data.name"
    help: str | None = None
    type: Callable[[str], Any] | None = None  # how the flag's text is read (None: as text)
    switch: bool = False  # present or absent (store_true)
    metavar: str | None = None

    @property
    def keyword(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def default(self) -> Any:
        return self.get(DEFAULTS)

    def get(self, cfg: RunConfig) -> Any:
        return reduce(getattr, self.field.split("."), cfg)

    def set(self, cfg: RunConfig, value: Any) -> None:
        *parents, name = self.field.split(".")
        setattr(reduce(getattr, parents, cfg), name, value)

    def read(self, value: Any) -> Any:
        """The setting's value from its flag's text or from a Python value."""
        if self.switch:
            return read_switch(self.flag, value)
        read: Reader = {int: read_int, float: read_float, parse_shape: read_shape,
                        None: read_text}[self.type]
        return (read_optional(read) if self.default is None else read)(self.flag, value)

    def argv(self, cfg: RunConfig, everything: bool) -> list[str]:
        """The flag that gives `cfg` its value; nothing for a default unless `everything`."""
        value = self.get(cfg)
        if self.switch:
            return [self.flag] if value else []
        if value is None or (value == self.default and not everything):
            return []
        return [self.flag, _text(value)]


def _text(value: Any) -> str:
    """A value as its flag takes it: a shape as CxHxW, a float exactly (repr)."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


WORKER_SETTINGS = (
    Setting("--threads-per-worker", "threads_per_worker", "default: cores // workers", int),
    Setting("--backend", "backend",
            "torch.distributed backend (default: gloo on CPU, nccl on CUDA)"),
    Setting("--device", "device", "cpu or cuda (default: %(default)s)"),
    Setting("--timeout", "timeout", "seconds before the whole run is stopped", float),
)
DATA_SETTINGS = (
    Setting("--dataset", "data.name",
            "a built-in name, folder:PATH (PATH/<class>/*.png|jpg, or PATH/train/<class>/ and "
            "PATH/test/<class>/) or npz:PATH (x_train, y_train, x_test, y_test) "
            "(default: %(default)s)"),
    Setting("--data-dir", "data.data_dir",
            "folder holding the dataset, used as given (default: $DISTBENCH_DATA, then the "
            "cache)"),
    Setting("--allow-partial-data", "data.allow_partial",
            "train on the CIFAR-10 batches present, recorded as partial", switch=True),
    Setting("--test-fraction", "data.test_fraction",
            "folder:PATH as one tree: the share held out for testing (default: %(default)s)",
            float),
    Setting("--synthetic-samples", "data.synthetic_samples", type=int),
    Setting("--synthetic-shape", "data.synthetic_shape", type=parse_shape, metavar="CxHxW"),
    Setting("--synthetic-classes", "data.synthetic_classes", type=int),
)
MODEL_SETTINGS = (
    Setting("--model", "model.name",
            f"one of {', '.join(MODEL_NAMES)}, or your own: path/to/file.py:function or "
            "package.module:function, called as function((C, H, W), num_classes, 'torch' or "
            "'tf') and returning a torch.nn.Module or keras.Model that outputs logits; the loss "
            "is cross-entropy over them (default: %(default)s)"),
    Setting("--pretrained", "model.pretrained", "ImageNet weights (mobilenet_v2)", switch=True),
    Setting("--image-size", "model.image_size",
            "resize inputs to N x N (default: native size; folder: datasets with images of "
            "several sizes need it)", int),
    Setting("--compile", "model.compile",
            "torch.compile the whole step: forward, backward and the optimizer's update (a "
            "fused optimizer stays its one kernel); eager with a note where the compiler fails",
            switch=True),
)
TRAINING_SETTINGS = (
    Setting("--epochs", "epochs", type=int),
    Setting("--batch-size", "batch_size",
            "global batch (strong scaling) or per-worker batch (weak)", int),
    Setting("--scaling", "scaling", "strong or weak (default: %(default)s)"),
    Setting("--optimizer", "optimizer", "adam or sgd (default: %(default)s)"),
    Setting("--optimizer-impl", "optimizer_impl",
            "torch's implementation of the optimizer: fused (one kernel for all parameters), "
            "foreach, default (torch's own choice: a loop over the parameters on CPU), or auto "
            "(fused Adam, foreach SGD); the same for every PyTorch row (default: %(default)s)"),
    Setting("--lr", "lr", type=float),
    Setting("--momentum", "momentum", "sgd momentum", float),
    Setting("--weight-decay", "weight_decay", type=float),
    Setting("--seed", "seed", type=int),
    Setting("--warmup-steps", "warmup_steps", "steps run and undone before the clock starts",
            int),
    Setting("--calibration-steps", "calibration_steps",
            "steps with and without sync used to measure ddp's comm time", int),
    Setting("--target-accuracy", "target_accuracy",
            "report time to reach this test accuracy", float),
    Setting("--contention-threshold", "contention_threshold",
            "share of the cores other processes may use while a run is timed before it is "
            "marked contended (default: %(default)s)", float),
)
STRATEGY_OPTION_SETTINGS = (
    Setting("--bucket-mb", "bucket_mb", "ddp/custom bucket size", float),
    Setting("--overlap", "overlap", "custom: all_reduce during backward", switch=True),
    Setting("--sync-every", "sync_every", "param-avg: steps between averages (default: epoch)",
            int),
    Setting("--average-optimizer-state", "average_optimizer_state", "param-avg", switch=True),
    Setting("--compression", "compression",
            f"lossy gradient compression: {' | '.join(COMPRESSIONS)} (ddp: all; custom: fp16, "
            "bf16; mpi: fp16; default: %(default)s)"),
    Setting("--powersgd-rank", "powersgd_rank", "rank of PowerSGD's factors (default: "
            "%(default)s)", int),
)
TF_SETTINGS = (
    Setting("--tf-shuffle-buffer", "tf_shuffle_buffer",
            "tf.data shuffle buffer (default: the PyTorch rows' per-epoch permutation)", int),
    Setting("--tf-prefetch", "tf_prefetch", "batches prefetched (default: AUTOTUNE; 0: off)",
            int),
    Setting("--tf-steps-per-execution", "tf_steps_per_execution",
            "training steps per call into TensorFlow's compiled step, for every TF row "
            "(default: %(default)s)", int),
    Setting("--tf-collective-timeout", "tf_collective_timeout",
            "tf-multiworker: seconds before a barrier fails (default: %(default)s)", float),
)
# The groups after "strategy and workers", in the order `--help` shows them.
SHARED_GROUPS = (
    ("data", DATA_SETTINGS),
    ("model", MODEL_SETTINGS),
    ("training", TRAINING_SETTINGS),
    ("strategy options", STRATEGY_OPTION_SETTINGS),
    ("tensorflow rows (tf-*)", TF_SETTINGS),
)
# Every setting that all runs of a study share; strategy, workers, output and progress are per
# run (RUN_ONLY) or per study (STUDY_ONLY).
SHARED_SETTINGS = WORKER_SETTINGS + tuple(s for _, group in SHARED_GROUPS for s in group)
SHARED = {s.keyword: s for s in SHARED_SETTINGS}


@dataclass(frozen=True)
class Keyword:
    """A setting of one run or of a study that is not shared by a study's runs."""

    default: Any
    read: Reader


def _read_strategies(flag: str, value: Any) -> list[str] | None:
    if isinstance(value, str):
        names = split_list(value)
        if not names:
            raise UsageError(f"{flag} expects a comma-separated list of names, got '{value}'")
        return names
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return split_list(",".join(value))
    raise _wrong(flag, "strategy names such as 'single,ddp' or ['single', 'ddp']", value)


def _read_counts(flag: str, value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = ",".join(map(str, value))
    if isinstance(value, str):
        return parse_counts(flag, value)
    raise _wrong(flag, "worker counts such as '1,2,4' or [1, 2, 4]", value)


def _read_repeats(flag: str, value: Any) -> int | str:
    """An integer >= 1, or 'auto'."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if text == "auto":
        return text
    if isinstance(text, str) and text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"{flag} expects an integer >= 1 or 'auto', got '{value}'")


def _read_number_text(parse: Callable[[str, str], float], expected: str) -> Reader:
    """A reader for a flag whose text `parse` reads ('5%', '20m'): a Python number is taken as
    that text, so both spellings meet the same checks."""
    def read(flag: str, value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = repr(float(value))
        if isinstance(value, str):
            return parse(flag, value)
        raise _wrong(flag, expected, value)

    return read


_read_percent = _read_number_text(parse_percent, "a percentage such as '5%' or 0.05")
_read_duration = _read_number_text(parse_duration,
                                   "a duration such as '20m', '1h' or 600 (seconds)")


def _read_worker_start(flag: str, value: Any) -> str:
    if value in WORKER_STARTS:
        return str(value)
    raise _wrong(flag, " or ".join(map(repr, WORKER_STARTS)), value)


def _read_best(flag: str, value: Any) -> str | None:
    if value in ("best", True):
        return "best"
    if value in (None, False):
        return None
    raise _wrong(flag, "'best'", value)


_PATH = Keyword(None, read_optional(read_text))
_PROGRESS = Keyword(False, read_switch)
# One run (`run`, `worker`): the cell, where its record goes, and a --config file instead.
RUN_ONLY = {
    "strategy": Keyword(DEFAULTS.strategy, read_text),
    "workers": Keyword(DEFAULTS.workers, read_int),
    "out": _PATH,
    "save_model": Keyword(False, read_switch),
    "no_progress": _PROGRESS,
    "config": _PATH,
}
# A study (`compare`): lists of strategies and worker counts, and how runs are repeated.
STUDY_ONLY = {
    "strategies": Keyword(None, read_optional(_read_strategies)),
    "workers": Keyword("1,2", _read_counts),
    "out": _PATH,
    "save_model": Keyword(None, _read_best),
    "no_progress": _PROGRESS,
    "repeats": Keyword("3", _read_repeats),
    "target_ci": Keyword("5%", _read_percent),
    "max_repeats": Keyword(10, read_int),
    "time_budget": Keyword(None, read_optional(_read_duration)),
    "rerun_contended": Keyword(0, read_int),
    "worker_start": Keyword("fork", _read_worker_start),
    "resume": _PATH,
    "no_baseline": Keyword(False, read_switch),
}
# What `resume` still takes: where the study is, and how it is shown.
NOT_STUDY_SETTINGS = ("resume", "out", "no_progress")


def defaults(only: Mapping[str, Keyword]) -> dict[str, Any]:
    """keyword -> default of the shared settings and `only` (RUN_ONLY or STUDY_ONLY)."""
    return {**{k: s.default for k, s in SHARED.items()}, **{k: v.default for k, v in only.items()}}


def check_keywords(given: Iterable[str], only: Mapping[str, Keyword], call: str) -> None:
    """Every keyword is a setting of `call` (distbench.run, distbench.compare), else one line
    naming it and the settings it is close to."""
    known = [*SHARED, *only]
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else f"see help({call}) for the settings")
            raise UsageError(f"{call}() got an unknown setting '{name}'; {hint}")


def read_keyword(settings: Mapping[str, Any], only: Mapping[str, Keyword], name: str) -> Any:
    """The value of a run's or study's own setting, its default when not given."""
    keyword = only[name]
    return keyword.read(flag_of(name), settings.get(name, keyword.default))


def given_beside(settings: Mapping[str, Any], allowed: Collection[str],
                 only: Mapping[str, Keyword]) -> list[str]:
    """The flags of the settings given besides `allowed`, sorted, for "drop ..." messages."""
    known = defaults(only)
    return [flag_of(k) for k in sorted(settings)
            if k not in allowed and settings[k] != known.get(k)]


# --------------------------------------------------------------------------- settings -> config


def shared_config(settings: Mapping[str, Any]) -> RunConfig:
    """A config with the shared settings given in `settings` (the base of every run of a study)."""
    cfg = RunConfig()
    for keyword, setting in SHARED.items():
        if keyword in settings:
            setting.set(cfg, setting.read(settings[keyword]))
    return cfg


def read_config(path: str) -> RunConfig:
    """A `RunConfig` JSON file (what compare and the local launcher hand their children)."""
    try:
        return RunConfig.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"--config {path}: not a readable RunConfig JSON file "
                         f"({type(exc).__name__}: {exc})") from None


def run_config(settings: Mapping[str, Any]) -> RunConfig:
    """The config of one run, not yet checked: the `config` file, which then takes no other
    setting, else the settings given."""
    path = read_keyword(settings, RUN_ONLY, "config")
    if path:
        given = given_beside(settings, {"config"}, RUN_ONLY)
        if given:
            raise UsageError(f"--config {path} holds every run setting; drop {', '.join(given)}")
        return read_config(path)
    cfg = shared_config(settings)
    cfg.strategy, cfg.workers, cfg.out = (read_keyword(settings, RUN_ONLY, name)
                                          for name in ("strategy", "workers", "out"))
    cfg.save_model = read_keyword(settings, RUN_ONLY, "save_model")
    cfg.progress = not read_keyword(settings, RUN_ONLY, "no_progress")
    return cfg


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
            if (cfg.strategy, cfg.optimizer, cfg.optimizer_kernel) == ("fsdp", "sgd", "fused"):
                raise UsageError("fsdp cannot step a fused SGD (torch has no sharding rule for "
                                 "it); use --optimizer-impl foreach or auto")
    except (TypeError, AttributeError) as exc:  # a hand-written --config file's wrong types
        raise UsageError(f"a run setting has the wrong type ({exc})") from None
    if load_strategy:
        get_strategy(cfg.strategy)
    return cfg


# --------------------------------------------------------------------------- config -> flags


def config_argv(cfg: RunConfig, everything: bool = False) -> list[str]:
    """The shared flags that give a run `cfg`'s settings; defaults left out unless `everything`.

    Strategy, workers, output and progress are left to the caller, which sets them per run.
    """
    return [arg for setting in SHARED_SETTINGS for arg in setting.argv(cfg, everything)]
