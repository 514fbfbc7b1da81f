"""How a worker's compute threads wait and how many it starts: so that a core taken by another
process slows a run down in proportion instead of collapsing it.

PyTorch's CPU kernels run in OpenMP parallel regions (libgomp in the pip wheels). At the end of
each region a thread that finished spins, by libgomp's default 300,000 iterations, before it
sleeps. When another process holds one of the cores, the thread that shares it gets that core
only in time slices, and every region waits for it while the others spin: the mlp-128 epoch of
`single` measured 59x slower beside one busy core (docs/measurements.md,
`benchmarks/contention.py`). Two defaults, both measured there:

- `GOMP_SPINCOUNT=10000`: a bounded spin. On a quiet machine its runs overlapped those with
  long spins (shorter spins cost up to 2x there: waking a sleeping thread takes microseconds);
  beside a busy core it cut the collapse from 59x to 9x (a sleeping thread gives the core back,
  and the woken one preempts the busy process).
- A one-process run started on a machine whose cores are partly busy gets one thread per idle
  core, not one per core: with no thread on a taken core no region waits for one. The record's
  `threads_note` says so. Runs of several processes keep cores // processes (their peers,
  starting at the same moment, would count as busy).

A wait setting the user made (`OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` in the environment) is kept.
TensorFlow's own thread pools do not spin this way (they measured 1.8x beside a busy core).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from distbench.system.contention import Sample
from distbench.system.fingerprint import usable_cores

WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SPIN_DEFAULT = "10000"  # iterations a finished OpenMP thread spins before it sleeps
BUSY_WINDOW_S = 0.1  # how long the machine is watched before a one-process run starts


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


def busy_cores(window_s: float = BUSY_WINDOW_S) -> float | None:
    """Cores other processes kept busy during the next `window_s` (this one sleeps through it);
    None where /proc/stat cannot be read."""
    start = Sample.now()
    time.sleep(window_s)
    end = Sample.now()
    if start.ticks is None or end.ticks is None:
        return None
    others = (end.ticks[0] - start.ticks[0]) - (end.own - start.own)
    return max(0.0, others / (end.wall - start.wall))


def one_process_threads() -> tuple[int, str | None]:
    """Threads for a run of one process on this machine, and the record's note when busy cores
    made them fewer than the usable cores."""
    cores = usable_cores()
    busy = busy_cores() if cores > 1 else None
    taken = min(cores - 1, round(busy)) if busy is not None else 0
    if taken <= 0:
        return cores, None
    return cores - taken, (f"{busy:.1f} of {cores} cores were busy with other processes when the "
                           f"run started: {cores - taken} thread(s) instead of {cores}")
