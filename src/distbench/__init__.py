"""distbench: train one model under several data-parallel strategies and compare them fairly.

From Python (a script or a notebook), the same settings as the command line, as keywords:

    import distbench
    df = distbench.compare(strategies=["single", "ddp"], workers=[1, 2], dataset="mnist-5k",
                           epochs=1, repeats=1, out="results/nb")
    view = distbench.report(df.distbench.out)   # .summary (a DataFrame), .figures (matplotlib)

`run` and `compare` live in `distbench.api`, and `report` is the report package, callable
(`distbench.report.view`); each is imported on first use, so that `import distbench` stays cheap
(no torch, TensorFlow, pandas or matplotlib).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distbench.core.version import __version__

if TYPE_CHECKING:
    from distbench.api import compare, run

__all__ = ["__version__", "compare", "report", "run"]


def __getattr__(name: str) -> Any:
    """`distbench.run` and `distbench.compare`, imported from `distbench.api` when first used;
    `distbench.report` is a subpackage, which Python's attribute lookup imports as such."""
    if name in ("run", "compare"):
        from distbench import api

        return getattr(api, name)
    if name == "report":
        import distbench.report  # sets the attribute: this hook is not asked again

        return distbench.report
    raise AttributeError(f"module 'distbench' has no attribute '{name}'")
