"""distbench: train one model under several data-parallel strategies and compare them fairly.

From Python (a script or a notebook), the same settings as the command line, as keywords:

    import distbench
    df = distbench.compare(strategies=["single", "ddp"], workers=[1, 2], dataset="mnist-5k",
                           epochs=1, repeats=1, out="results/nb")
    view = distbench.report(df.distbench.out)   # .summary (a DataFrame), .figures (matplotlib)

`run`, `compare` and `report` live in `distbench.api` and are imported on first use, so that
`import distbench` stays cheap (no torch, TensorFlow, pandas or matplotlib).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distbench.core.version import __version__

if TYPE_CHECKING:
    from distbench.api import compare, report, run

__all__ = ["__version__", "compare", "report", "run"]
_API = ("compare", "report", "run")


def __getattr__(name: str) -> Any:
    """`distbench.run` and friends, imported from `distbench.api` when first used."""
    if name in _API:
        from distbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'distbench' has no attribute '{name}'")
