"""Which MPI rank ended first, seen from outside mpiexec.

When one rank dies, mpiexec (Hydra) kills the others with the same SIGKILL, and its exit codes
("Exit codes: [host] 9,9") then cannot tell the cause from its echoes; its banner names the
lowest rank. The launcher is not the ranks' parent and cannot wait for them, but a pidfd
(Linux 5.3) becomes readable when its process ends, whoever the parent is. A rank that dies
takes Hydra a wake-up, a `waitpid` and a `kill`, and the rank it kills takes the teardown of its
address space, before a second rank can end; the watch sees the first one alone.
"""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

POLL_S = 0.05


class FirstToEnd:
    """Watches the PIDs that ranks write to `rank<N>.pid` in the run folder (`cli/worker.py`)
    from a thread, until the first of them ends."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.first: str | None = None  # the rank that ended alone, before any other
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rank-watch", daemon=True)
        self._thread.start()

    def stop(self) -> str | None:
        """End the watch; the rank that ended first, alone, if one did."""
        self._stop.set()
        self._thread.join()
        return self.first

    def _watch(self) -> None:
        poller = select.poll()
        fds: dict[int, str] = {}
        try:
            while not self._stop.is_set():
                ended = self._open_new(poller, fds)
                if not ended:
                    ended = {fds[fd] for fd, _ in poller.poll(POLL_S * 1000)}
                if ended:
                    # Two ranks gone by the same look: which was first is not known.
                    self.first = ended.pop() if len(ended) == 1 else None
                    return
        finally:
            for fd in fds:
                os.close(fd)

    def _open_new(self, poller: select.poll, fds: dict[int, str]) -> set[str]:
        """Open a pidfd for each rank that wrote its PID since the last look; the ranks whose
        process is already gone are returned."""
        ended = set()
        known = set(fds.values())
        for path in self.run_dir.glob("rank*.pid"):
            rank = path.stem.removeprefix("rank")
            if rank in known:
                continue
            try:
                fd = os.pidfd_open(int(path.read_text()))
            except ProcessLookupError:
                ended.add(rank)
                continue
            except (ValueError, OSError):  # still being written, or unreadable: next look
                continue
            fds[fd] = rank
            poller.register(fd, select.POLLIN)
        return ended
