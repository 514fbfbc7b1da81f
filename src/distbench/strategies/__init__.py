"""Strategy registry: name -> class, imported lazily so optional frameworks stay optional.

Command: python -c "from distbench.strategies import STRATEGIES; print(list(STRATEGIES))"
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from distbench.errors import DistbenchError, unknown_name

# name -> (module, class, pip extra that provides its framework or None, modules it needs)
STRATEGIES: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "single": ("distbench.strategies.single", "SingleStrategy", None, ()),
    "ddp": ("distbench.strategies.ddp", "DDPStrategy", None, ()),
    "mpi": ("distbench.strategies.mpi", "MPIStrategy", "mpi", ("mpi4py",)),
    "custom": ("distbench.strategies.custom", "CustomStrategy", None, ()),
    "param-avg": ("distbench.strategies.param_avg", "ParamAvgStrategy", None, ()),
    "tf-single": ("distbench.strategies.tf_single", "TFSingleStrategy", "tf", ("tensorflow",)),
    "tf-mirrored": ("distbench.strategies.tf_mirrored", "TFMirroredStrategy", "tf",
                    ("tensorflow",)),
    "tf-custom": ("distbench.strategies.tf_custom", "TFCustomStrategy", "tf", ("tensorflow",)),
    "tf-multiworker": ("distbench.strategies.tf_multiworker", "TFMultiWorkerStrategy", "tf",
                       ("tensorflow",)),
}

PYTORCH_STRATEGIES = [n for n in STRATEGIES if not n.startswith("tf-")]


def missing_framework(name: str) -> str | None:
    """The install hint if the strategy's framework is not importable, else None."""
    _, _, extra, needs = STRATEGIES[name]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            return f'strategy {name} needs {module}: pip install "distbench[{extra}]"'
    return None


def available_strategies() -> list[str]:
    return [n for n in STRATEGIES if missing_framework(n) is None]


def get_strategy(name: str) -> Any:
    """The strategy class for `name`; unknown names and missing frameworks are one-line errors."""
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, list(STRATEGIES))
    hint = missing_framework(name)
    if hint:
        raise DistbenchError(hint)
    module, cls, _, _ = STRATEGIES[name]
    return getattr(importlib.import_module(module), cls)
