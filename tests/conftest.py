"""Shared fixtures: the shared datasets, a clean environment, and process-group teardown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data_dir() -> Path | None:
    """$DISTBENCH_DATA, else ../shared/data beside the checkout, else None."""
    env = os.environ.get("DISTBENCH_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


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
    ):
        monkeypatch.delenv(var, raising=False)
    root = shared_data_dir()
    if root is not None:
        monkeypatch.setenv("DISTBENCH_DATA", str(root))
    else:
        monkeypatch.delenv("DISTBENCH_DATA", raising=False)
