"""What every strategy is, whatever its framework: one worker's place in the world.

Shared by the PyTorch base (`base.py`) and the TensorFlow one (`tf_base.py`); it imports neither
framework, so the TF rows never load torch through it. The facts about a strategy (framework,
launcher, ...) are its registry line's, read through `info`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from distbench.core.config import RunConfig
from distbench.strategies import STRATEGIES, StrategyInfo
from distbench.system.cluster import ClusterEnv


class WorkerRole:
    name: ClassVar[str]
    # How comm_s is obtained, in words, stored in the record so readers know what it means.
    comm_method: ClassVar[str] = "none: one process"

    def __init__(self, cfg: RunConfig, env: ClusterEnv) -> None:
        self.cfg = cfg
        self.env = env
        self.comm_s = 0.0  # time inside this strategy's own collectives, timed steps only

    @property
    def info(self) -> StrategyInfo:
        """This strategy's facts, from its registry line (the one place they are declared)."""
        return STRATEGIES[self.name]

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
