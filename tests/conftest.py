"""Shared fixtures: the shared datasets, a clean environment, and the Keras facts.

Plain helper functions live in tests/helpers.py (importable as `helpers` from every folder, see
pyproject.toml's `pythonpath`); this file holds only what pytest injects.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from helpers import RunCache, keras_facts, shared_data_dir


@pytest.fixture
def real_data() -> Path:
    """The folder with the genuine datasets; the test skips where it is absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip(
            "real datasets absent: set DISTBENCH_DATA or place ../shared/data beside the checkout"
        )
    return root


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test downloads, writes to the user's cache, or inherits a launcher's rank variables."""
    monkeypatch.setenv("DISTBENCH_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "TF_CONFIG",
        "PMI_RANK",
        "PMI_SIZE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "SLURM_LOCALID",
        "DISTBENCH_DATA_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    root = shared_data_dir()
    if root is not None:
        monkeypatch.setenv("DISTBENCH_DATA", str(root))
    else:
        monkeypatch.delenv("DISTBENCH_DATA", raising=False)


@pytest.fixture(scope="session")
def keras_side() -> dict[str, Any]:
    """The Keras model and input-pipeline facts, from one TensorFlow subprocess per session."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow not installed (pip install 'distbench[tf]')")
    return keras_facts()


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> RunCache:
    """(record, final weights) of `distbench run FLAGS --save-model`, trained once per session."""
    return RunCache(lambda: tmp_path_factory.mktemp("run"))
