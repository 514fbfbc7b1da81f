"""Strategies: one file each, plus one line in the registry below. Owns how N workers cooperate.

The registry holds every fact the rest of distbench needs about a strategy (framework, how it is
launched, one worker or many, synchronous or not, how its communication is measured), so that
planning processes (the CLI, compare, the launchers, the report) read them without importing
torch or TensorFlow. Imports only `system` and `core`; each strategy file imports its framework.

Command: python -c "from distbench.strategies import STRATEGIES; print(list(STRATEGIES))"
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from enum import Enum
from typing import Any

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError, UsageError, unknown_name


class Framework(str, Enum):
    PYTORCH = "pytorch"
    TENSORFLOW = "tensorflow"


class Launcher(str, Enum):
    """How a launcher starts the workers of one run."""

    # One worker process whatever --workers says: the baselines, and TF replicas that live in one
    # process. Still a spawned process, so every row gets the same environment and --timeout.
    ONE_PROCESS = "one-process"
    # N processes with torchrun-style variables (RANK, WORLD_SIZE, ...): torchrun can start them.
    SPAWN = "spawn"
    # N processes, each with a TF_CONFIG naming every worker.
    TF_CONFIG = "tf-config"
    # `mpiexec -n N`: ranks come from MPI.
    MPIEXEC = "mpiexec"

    @property
    def multi_process(self) -> bool:
        return self is not Launcher.ONE_PROCESS


class CommMeasure(str, Enum):
    """How `comm_s` is obtained."""

    NONE = "none"  # one process: nothing crosses a wire
    TIMED = "timed"  # the strategy issues its collectives itself and times them
    CALIBRATION = "calibration"  # steps with and without sync, the difference
    # A communication hook times every bucket's all-reduce; calibration runs as a cross-check.
    HOOK = "hook"
    REPLICA_CALIBRATION = "replica-calibration"  # all replicas against one replica (TF)


class Overlap(str, Enum):
    """Whether gradient communication overlaps backward (for the projection's schedule)."""

    NEVER = "never"
    ALWAYS = "always"  # DDP's reducer: buckets go out during backward, the first one 1 MiB
    WITH_FLAG = "with --overlap"  # buckets of --bucket-mb, only when --overlap is given


class Sharding(str, Enum):
    """What model state each rank holds a 1/N share of (Rajbhandari et al., SC'20, ZeRO)."""

    NONE = "none"  # a full replica: parameters, gradients and optimizer state
    OPTIMIZER = "optimizer"  # ZeRO-1: optimizer state sharded, parameters and gradients whole
    FULL = "full"  # ZeRO-3 / FSDP: parameters, gradients and optimizer state all sharded


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    target: str  # "module:Class", imported only by the worker that runs it
    framework: Framework
    launcher: Launcher
    comm: CommMeasure
    single_worker: bool = False  # a baseline: --workers other than 1 is a usage error
    synchronous: bool = True  # must match its framework's baseline weight for weight (parity)
    overlap: Overlap = Overlap.NEVER
    # False where workers average parameters every K steps instead of gradients every step.
    per_step_allreduce: bool = True
    needs: tuple[str, ...] = ()  # modules its framework needs
    extra: str | None = None  # the pip extra that provides them
    sharding: Sharding = Sharding.NONE
    # The lossy --compression modes it implements ("none" is always accepted), and why it
    # refuses the others where that needs saying.
    compressions: tuple[str, ...] = ()
    compression_note: str | None = None
    # The strategy-specific options (RunConfig fields, see OPTIONS) it honours; any other one
    # set away from its default is a usage error rather than silently ignored.
    options: tuple[str, ...] = ()
    # In the study `distbench compare` runs when --strategies is not given (`all` adds the rest).
    in_default_compare: bool = True

    def exact(self, compression: str) -> bool:
        """Whether a run computes the baseline's update exactly: synchronous, uncompressed."""
        return self.synchronous and compression == "none"

    @property
    def baseline(self) -> bool:
        """The framework's own one-process baseline, added to every study of that framework."""
        return self.single_worker


_TORCH, _TF = Framework.PYTORCH, Framework.TENSORFLOW
_MOD = "distbench.strategies."

STRATEGIES: dict[str, StrategyInfo] = {
    s.name: s
    for s in (
        StrategyInfo("single", _MOD + "single:SingleStrategy", _TORCH, Launcher.ONE_PROCESS,
                     CommMeasure.NONE, single_worker=True),
        StrategyInfo("ddp", _MOD + "ddp:DDPStrategy", _TORCH, Launcher.SPAWN,
                     CommMeasure.HOOK, overlap=Overlap.ALWAYS,
                     compressions=("fp16", "bf16", "powersgd"), options=("bucket_mb",)),
        StrategyInfo("mpi", _MOD + "mpi:MPIStrategy", _TORCH, Launcher.MPIEXEC, CommMeasure.TIMED,
                     needs=("mpi4py",), extra="mpi", compressions=("fp16",),
                     compression_note="numpy, whose buffers MPI sums, has no bfloat16; "
                                      "PowerSGD is DDP's communication hook"),
        StrategyInfo("custom", _MOD + "custom:CustomStrategy", _TORCH, Launcher.SPAWN,
                     CommMeasure.TIMED, overlap=Overlap.WITH_FLAG, compressions=("fp16", "bf16"),
                     compression_note="PowerSGD is DDP's communication hook",
                     options=("bucket_mb", "overlap")),
        StrategyInfo("param-avg", _MOD + "param_avg:ParamAvgStrategy", _TORCH, Launcher.SPAWN,
                     CommMeasure.TIMED, synchronous=False, per_step_allreduce=False,
                     options=("sync_every", "average_optimizer_state")),
        # Sharded data parallelism: on one host it saves memory, not time, so the default study
        # (about 10 minutes on 2 cores) leaves it to `--strategies all` or by name.
        StrategyInfo("zero", _MOD + "zero:ZeroStrategy", _TORCH, Launcher.SPAWN,
                     CommMeasure.CALIBRATION, overlap=Overlap.ALWAYS,
                     sharding=Sharding.OPTIMIZER, in_default_compare=False,
                     options=("bucket_mb",)),
        StrategyInfo("fsdp", _MOD + "fsdp:FSDPStrategy", _TORCH, Launcher.SPAWN,
                     CommMeasure.CALIBRATION, sharding=Sharding.FULL, in_default_compare=False),
        StrategyInfo("tf-single", _MOD + "tf_single:TFSingleStrategy", _TF, Launcher.ONE_PROCESS,
                     CommMeasure.NONE, single_worker=True, needs=("tensorflow",), extra="tf"),
        StrategyInfo("tf-mirrored", _MOD + "tf_mirrored:TFMirroredStrategy", _TF,
                     Launcher.ONE_PROCESS, CommMeasure.REPLICA_CALIBRATION,
                     needs=("tensorflow",), extra="tf"),
        StrategyInfo("tf-custom", _MOD + "tf_custom:TFCustomStrategy", _TF, Launcher.ONE_PROCESS,
                     CommMeasure.REPLICA_CALIBRATION, needs=("tensorflow",), extra="tf"),
        StrategyInfo("tf-multiworker", _MOD + "tf_multiworker:TFMultiWorkerStrategy", _TF,
                     Launcher.TF_CONFIG, CommMeasure.REPLICA_CALIBRATION,
                     needs=("tensorflow",), extra="tf"),
    )
}


def strategy_info(name: str) -> StrategyInfo:
    """The facts of a registered strategy; an unknown name is a one-line usage error."""
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, list(STRATEGIES))
    return STRATEGIES[name]


def check_workers(name: str, workers: int) -> None:
    """A baseline is one worker by definition: any other count is a usage error."""
    if strategy_info(name).single_worker and workers != 1:
        raise UsageError(f"strategy {name} is the one-process baseline; use --workers 1")


# Options that only some strategies honour: RunConfig field -> flag.
OPTIONS = {"bucket_mb": "--bucket-mb", "overlap": "--overlap", "sync_every": "--sync-every",
           "average_optimizer_state": "--average-optimizer-state"}


def foreign_options(name: str, cfg: RunConfig) -> list[str]:
    """The strategy-specific options set in `cfg` (away from their defaults) that `name` does
    not honour."""
    defaults = RunConfig()
    return [field for field in OPTIONS if field not in strategy_info(name).options
            and getattr(cfg, field) != getattr(defaults, field)]


def check_options(name: str, cfg: RunConfig) -> None:
    """An option the strategy would ignore is a one-line usage error, not a silent no-op."""
    foreign = foreign_options(name, cfg)
    if foreign:
        honoured = ", ".join(OPTIONS[f] for f in strategy_info(name).options) or "none"
        raise UsageError(f"strategy {name} does not use {', '.join(OPTIONS[f] for f in foreign)}"
                         f" (its own options: {honoured})")


def check_compression(name: str, compression: str) -> None:
    """A lossy --compression the strategy does not implement is a one-line usage error."""
    info = strategy_info(name)
    if compression == "none" or compression in info.compressions:
        return
    supported = ", ".join(("none", *info.compressions))
    why = f" ({info.compression_note})" if info.compression_note else ""
    raise UsageError(f"strategy {name} does not support --compression {compression}{why}; "
                     f"choose from {supported}")


def framework_baselines() -> dict[Framework, str]:
    """Each framework's baseline strategy (the first single-worker one registered)."""
    out: dict[Framework, str] = {}
    for info in STRATEGIES.values():
        if info.baseline:
            out.setdefault(info.framework, info.name)
    return out


def missing_framework(name: str) -> str | None:
    """The install hint if the strategy's framework is not importable, else None."""
    info = strategy_info(name)
    for module in info.needs:
        if importlib.util.find_spec(module) is None:
            return f'strategy {name} needs {module}: pip install "distbench[{info.extra}]"'
    return None


def available_strategies(default_only: bool = False) -> list[str]:
    """The installed strategies; `default_only`: those of the default study."""
    return [n for n, info in STRATEGIES.items()
            if missing_framework(n) is None and (info.in_default_compare or not default_only)]


def get_strategy(name: str) -> Any:
    """The strategy class for `name` (imports its framework); unknown names and missing
    frameworks are one-line errors."""
    hint = missing_framework(name)
    if hint:
        raise DistbenchError(hint)
    module, cls = strategy_info(name).target.split(":")
    return getattr(importlib.import_module(module), cls)
