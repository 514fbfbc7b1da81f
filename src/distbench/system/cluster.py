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

import json
import os
import re
from collections.abc import Mapping
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


def expand_slurm_nodelist(nodelist: str) -> list[str]:
    """Hosts of a SLURM node list: 'gpu[03-05,9],cpu1' -> gpu03 gpu04 gpu05 gpu9 cpu1."""
    hosts = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", nodelist):
        if plain:
            hosts.append(plain.strip())
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            if not hi:
                hosts.append(prefix + lo)
                continue
            width = len(lo)
            hosts += [f"{prefix}{i:0{width}d}" for i in range(int(lo), int(hi) + 1)]
    return hosts


def first_slurm_host(nodelist: str) -> str:
    """First host of a SLURM node list such as 'gpu[03-05,9],cpu1' (-> 'gpu03')."""
    hosts = expand_slurm_nodelist(nodelist)
    return hosts[0] if hosts else nodelist


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
    return (index if task.get("type") == "chief" else chief + index), world


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
                r = int(src[rank_var])
                source, values = name, (r, int(src[size_var]), int(src.get(local_var, r)))
                break
    addr = master_addr or env.get("MASTER_ADDR")
    if addr is None and source == "slurm" and "SLURM_JOB_NODELIST" in env:
        addr = first_slurm_host(env["SLURM_JOB_NODELIST"])
    port = master_port or int(env.get("MASTER_PORT", DEFAULT_PORT))
    r, w, lr = values
    if not 0 <= r < w:
        raise UsageError(f"rank {r} from {source} is outside world size {w}: a rank must be "
                         f"in 0..world size - 1 (--rank, --world-size or the launcher's variables)")
    local_size = next((env[v] for v in LOCAL_SIZE_VARS if v in env), str(w))
    local = int(re.match(r"\d+", local_size)[0]) if re.match(r"\d+", local_size) else w
    return ClusterEnv(r, w, lr, addr or "127.0.0.1", port, source, min(local, w))
