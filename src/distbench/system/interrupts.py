"""Stopping cleanly: termination signals treated as Ctrl-C, and children that die with us.

Workers run in sessions of their own (so that one signal stops a worker and whatever it started),
which also means a signal sent to `distbench run` or `distbench compare` does not reach them.
These two helpers close that gap.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextlib.contextmanager
def stop_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP act like Ctrl-C, so the handlers that stop workers and record the
    interruption run for them too (`timeout`, `kill`, a closed terminal)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# The process that is about to fork, recorded just before every fork: a child compares it with its
# parent once the death signal is armed (a parent that died in between would never send it).
_forking = {"pid": os.getpid()}
os.register_at_fork(before=lambda: _forking.update(pid=os.getpid()))


def die_with_parent() -> None:
    """In a child before exec (a `preexec_fn`): get SIGTERM when the parent dies, even by
    SIGKILL, so that no worker trains on with nobody watching it; a child whose parent is already
    gone by then ends at once (the exit code of SIGTERM: a signal sent now could meet the
    parent's inherited handler, which exec would forget). Linux only; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != _forking["pid"]:
            os._exit(128 + signal.SIGTERM)
