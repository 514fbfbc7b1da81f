"""How a worker's compute threads wait and how many it starts: so that a core taken by another
process slows a run down in proportion instead of collapsing it.

PyTorch's CPU kernels run in OpenMP parallel regions (libgomp in the pip wheels). At the end of
each region a thread that finished spins, by libgomp's default 300,000 iterations, before it
sleeps. When another process holds one of the cores, the thread that shares it gets that core
only in time slices, and every region waits for it while the others spin: the mlp-128 epoch of
`single` measured 59x slower beside one busy core. Two defaults, from the sweep in
docs/measurements.md (`benchmarks/contention.py`):

- `GOMP_SPINCOUNT=3000`: a bounded spin. Beside a busy core the epoch grew with the spin count
  (a thread that sleeps gives the core back, and the woken one preempts the busy process): 4x
  at 3,000 against 59x at libgomp's default. On a quiet machine shorter spins cost up to 2x
  (waking a sleeping thread takes microseconds, at each of a step's ~60 regions); at 3,000 the
  quiet epoch was within the spread of the long-spin runs.
- A one-process run started while other processes keep some of its cores busy gets one thread
  per idle core: with no thread on a taken core no region waits for one. The record's
  `threads_note` says so. Runs of several processes keep cores // processes (their peers,
  starting at the same moment, would count as busy).

A wait setting the user made (`OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` in the environment) is kept.
`OMP_WAIT_POLICY=active` is the fastest on a machine kept for the run (no thread ever sleeps, so
no kernel waits for one to wake: the batch-128 `single` step 7% faster here), and collapses like
libgomp's default when a load arrives.
TensorFlow's own thread pools do not spin this way (they measured 1.8x beside a busy core).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

from distbench.system.contention import line_seconds, own_cpu_s

WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SPIN_DEFAULT = "3000"  # iterations a finished OpenMP thread spins before it sleeps
BUSY_WINDOW_S = 0.1  # how long the machine is watched before a one-process run starts


def usable_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def wait_defaults(env: Mapping[str, str]) -> dict[str, str]:
    """The wait setting distbench adds to `env`: none where the user chose one."""
    return {} if any(v in env for v in WAIT_VARS) else {"GOMP_SPINCOUNT": SPIN_DEFAULT}


def apply_wait_defaults() -> None:
    """Set the wait default in this process's environment; libgomp reads it when it loads,
    with torch, so this runs first in every worker."""
    os.environ.update(wait_defaults(os.environ))


def wait_settings() -> dict[str, str | None]:
    """The wait setting a worker started from here runs with, for the fingerprint."""
    effective = {**os.environ, **wait_defaults(os.environ)}
    return {v: effective.get(v) for v in WAIT_VARS}


def busy_ticks(stat: str, cpus: set[int]) -> float:
    """Busy CPU seconds since boot of the CPUs in `cpus`, from the per-CPU lines of /proc/stat's
    text: other tenants of a larger host (a container's cpuset, a Slurm allocation) do not
    count."""
    busy = 0.0
    for line in stat.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            busy += line_seconds(fields)[0]
    return busy


def busy_cores(window_s: float = BUSY_WINDOW_S) -> float | None:
    """Cores of this process's affinity set that other processes kept busy during the next
    `window_s` (this one sleeps through it); None where /proc/stat cannot be read."""
    stat = Path("/proc/stat")
    try:
        cpus = set(os.sched_getaffinity(0))
        start = busy_ticks(stat.read_text(), cpus)
        own_start, wall_start = own_cpu_s(), time.monotonic()
        time.sleep(window_s)
        end = busy_ticks(stat.read_text(), cpus)
    except (OSError, AttributeError, ValueError):  # not Linux, or an unreadable /proc
        return None
    others = (end - start) - (own_cpu_s() - own_start)
    return max(0.0, others / (time.monotonic() - wall_start))


def one_process_threads() -> tuple[int, str | None]:
    """Threads for a run of one process on this machine, and the record's note when busy cores
    made them fewer than the usable cores."""
    cores = usable_cores()
    busy = busy_cores() if cores > 1 else None
    taken = min(cores - 1, math.floor(busy + 0.5)) if busy is not None else 0
    if taken <= 0:
        return cores, None
    return cores - taken, (f"{busy:.1f} of the {cores} cores this run may use were busy with "
                           f"other processes when it started: {cores - taken} thread(s) "
                           f"instead of {cores}")
