"""Who am I: rank, world size, local rank and rendezvous address of this worker.

Detection never starts processes (that is `distbench.launch`); it only reads what a launcher left
in the environment. Sources are tried in this order, the first that applies wins:

1. explicit flags (`--rank`, `--world-size`, ...): the user said so;
2. torchrun / TorchElastic (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`), which is also what distbench's
   own local launcher sets;
3. TensorFlow's `TF_CONFIG` (`task.index` among `cluster.worker` [+ `chief`]);
4. Open MPI (`OMPI_COMM_WORLD_RANK`, `..._SIZE`, `..._LOCAL_RANK`);
5. MPICH / Hydra (`PMI_RANK`, `PMI_SIZE`, `MPI_LOCALRANKID`);
6. SLURM (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`).

MPI comes before SLURM because `mpiexec` inside an allocation keeps the batch step's SLURM
variables, which then describe the wrong process; under `srun` both agree. The rendezvous address
is `MASTER_ADDR`/`MASTER_PORT` when set, else the first SLURM node, else 127.0.0.1:29500.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from distbench.core.errors import UsageError

DEFAULT_PORT = 29500

# (source name, rank, world size, local rank) variable names, in priority order.
ENV_SOURCES = [
    ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"),
    ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("mpich", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
    ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
]
# Workers on this node, which share its cores; the first variable present is used.
LOCAL_SIZE_VARS = ["LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                   "SLURM_NTASKS_PER_NODE"]


@dataclass(frozen=True)
class ClusterEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT
    source: str = "none"
    local_world_size: int = 1

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


# The most hosts a SLURM node list may expand to: more nodes than any cluster has, fewer than
# would fill memory (a list such as 'n[0-99999999999]' is refused instead).
MAX_SLURM_HOSTS = 1_000_000
# The most ranks a launcher's variables may name: torch and MPI count them in an int32.
MAX_RANKS = 2**31 - 1


def iter_slurm_nodelist(nodelist: str) -> Iterator[str]:
    """Hosts of a SLURM node list (SLURM_JOB_NODELIST, which errors name), one at a time:
    'gpu[03-05,9],cpu1' -> gpu03 gpu04 gpu05 gpu9 cpu1. Lazy, so that the first host of a long
    range costs nothing."""
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", nodelist):
        if plain:
            yield plain.strip()
            continue
        for part in ranges.split(","):
            lo, dash, hi = part.partition("-")
            if not lo.isascii() or not lo.isdigit() or dash and (
                    not hi.isascii() or not hi.isdigit() or int(hi) < int(lo)):
                raise UsageError(f"SLURM_JOB_NODELIST={_shown(nodelist)}: '{part}' is not a "
                                 f"number or a range lo-hi of numbers")
            width = len(lo)
            for i in range(int(lo), int(hi or lo) + 1):
                yield f"{prefix}{i:0{width}d}"


def expand_slurm_nodelist(nodelist: str) -> list[str]:
    """Every host of a SLURM node list (see `iter_slurm_nodelist`), at most MAX_SLURM_HOSTS."""
    hosts = list(itertools.islice(iter_slurm_nodelist(nodelist), MAX_SLURM_HOSTS + 1))
    if len(hosts) > MAX_SLURM_HOSTS:
        raise UsageError(f"SLURM_JOB_NODELIST={_shown(nodelist)} names more than "
                         f"{MAX_SLURM_HOSTS:,} hosts")
    return hosts


def first_slurm_host(nodelist: str) -> str:
    """First host of a SLURM node list such as 'gpu[03-05,9],cpu1' (-> 'gpu03')."""
    return next(iter_slurm_nodelist(nodelist), nodelist)


def _shown(value: str) -> str:
    """A variable's value quoted on one line, cut short: it is the user's, of any length."""
    return repr(value if len(value) <= 60 else value[:60] + "...")


def whole_number(name: str, value: str, low: int, high: int = MAX_RANKS) -> int:
    """A launcher variable's whole number in [low, high], or a usage error naming it."""
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(high))
            and low <= int(value) <= high):
        raise UsageError(f"{name}={_shown(value)} is not a whole number in [{low}, {high}]")
    return int(value)


def tf_config_task(tf_config: str) -> tuple[int, int]:
    """(rank, world size) of a TF_CONFIG JSON; the chief, if listed, is rank 0."""
    try:
        spec = json.loads(tf_config)
        cluster, task = spec.get("cluster", {}), spec.get("task", {})
        chief = len(cluster.get("chief", []))
        world = chief + len(cluster.get("worker", []))
        index = int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"TF_CONFIG is not a TensorFlow cluster spec ({exc}); expected JSON such as "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    rank = index if task.get("type") == "chief" else chief + index
    if not 0 <= rank < world:
        raise UsageError(f"TF_CONFIG's task {task.get('type')!r} {index} is not one of the "
                         f"{world} tasks of its cluster")
    return rank, world


def _with_tf_config(env: Mapping[str, str], sources: list[tuple[str, str, str, str]]):
    """ENV_SOURCES with TF_CONFIG spliced in as the third source, as plain variables."""
    if "TF_CONFIG" in env:
        rank, world = tf_config_task(env["TF_CONFIG"])
        env = {**env, "_TF_RANK": str(rank), "_TF_WORLD": str(world)}
        sources = [sources[0], ("tf_config", "_TF_RANK", "_TF_WORLD", "_TF_RANK"), *sources[1:]]
    for name, rank_var, size_var, local_var in sources:
        yield name, rank_var, size_var, local_var, env


def detect(
    environ: Mapping[str, str] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    local_rank: int | None = None,
    master_addr: str | None = None,
    master_port: int | None = None,
) -> ClusterEnv:
    """The first source in the documented order that names a rank (see the module docstring)."""
    env = os.environ if environ is None else environ
    source, values = "none", (0, 1, 0)
    if rank is not None or world_size is not None:
        r, w = rank or 0, world_size or 1
        source, values = "flags", (r, w, local_rank if local_rank is not None else r)
    else:
        for name, rank_var, size_var, local_var, src in _with_tf_config(env, ENV_SOURCES):
            if rank_var in src and size_var in src:
                r = whole_number(rank_var, src[rank_var], 0)
                values = (r, whole_number(size_var, src[size_var], 1),
                          whole_number(local_var, src[local_var], 0) if local_var in src else r)
                source = name
                break
    addr = master_addr or env.get("MASTER_ADDR")
    if addr is None and source == "slurm" and "SLURM_JOB_NODELIST" in env:
        addr = first_slurm_host(env["SLURM_JOB_NODELIST"])
    port = master_port or whole_number("MASTER_PORT", env.get("MASTER_PORT", str(DEFAULT_PORT)), 1,
                                 65535)
    if not 1 <= port <= 65535:
        raise UsageError(f"--master-port must be in [1, 65535], got {port}")
    r, w, lr = values
    if not 0 <= r < w:
        raise UsageError(f"rank {r} from {source} is outside world size {w}: a rank must be "
                         f"in 0..world size - 1 (--rank, --world-size or the launcher's variables)")
    local_size = next((env[v] for v in LOCAL_SIZE_VARS if v in env), str(w))
    # SLURM writes '3(x2)' for three tasks on each of two nodes; only the count is read.
    count = re.match(r"[0-9]{1,10}", local_size)
    local = int(count[0]) if count else w
    return ClusterEnv(r, w, lr, addr or "127.0.0.1", port, source, min(local, w))
