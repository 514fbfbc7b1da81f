"""What every strategy is, whatever its framework: one worker's place in the world.

Shared by the PyTorch base (`base.py`) and the TensorFlow one (`tf_base.py`); it imports neither
framework, so the TF rows never load torch through it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from distbench.cluster import ClusterEnv
from distbench.config import RunConfig


class WorkerRole:
    name: ClassVar[str]
    framework: ClassVar[str]
    # How the local launcher starts workers: "one-process" (one worker process, whatever
    # --workers says: the baselines, and TF replicas inside one process), "spawn" (N processes,
    # torchrun-style env), "tf-config" (spawn, plus a TF_CONFIG per worker) or "mpiexec". The
    # baselines are started as worker processes too, so every row is timed in a fresh process
    # with the same environment, thread settings and --timeout.
    launcher: ClassVar[str] = "one-process"

    def __init__(self, cfg: RunConfig, env: ClusterEnv) -> None:
        self.cfg = cfg
        self.env = env
        self.comm_s = 0.0  # time inside this strategy's own collectives, timed steps only

    @property
    def rank(self) -> int:
        return self.env.rank

    @property
    def world(self) -> int:
        return self.env.world_size

    def reset(self) -> None:
        """Forget warm-up: communication time starts from zero."""
        self.comm_s = 0.0

    # ---- collectives on small host values, for metrics and timings (one process: identity)
    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return list(values)

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's picklable `obj`, in rank order (small objects only)."""
        return [obj]

    def barrier(self) -> None:
        pass
