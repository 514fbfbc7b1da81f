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
import re
import select
import threading
from pathlib import Path

POLL_S = 0.05
PID_FILE = re.compile(r"rank(\d+)\.pid")


class FirstToEnd:
    """Watches, from a thread, the PIDs that ranks write to `rank<N>.pid` in the run folder
    (`cli/worker.py`), until the first of them ends. `first` is that rank only when every rank
    was watched by then and it ended alone; otherwise the order is unknown (None)."""

    def __init__(self, run_dir: Path, ranks: int) -> None:
        self.run_dir, self.ranks = run_dir, ranks
        self.first: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if hasattr(os, "pidfd_open"):  # elsewhere no order is seen, and mpiexec's codes decide
            self._thread = threading.Thread(target=self._watch, name="rank-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        poller = select.poll()
        fds: dict[int, str] = {}
        gone: set[str] = set()
        try:
            while not self._stop.is_set():
                if len(fds) + len(gone) < self.ranks:  # some rank has not written its PID yet
                    gone |= self._open_new(poller, fds, gone)
                ended = gone | {fds[fd] for fd, _ in poller.poll(0 if gone else POLL_S * 1000)}
                if ended:
                    if len(fds) + len(gone) == self.ranks and len(ended) == 1:
                        self.first = ended.pop()
                    return
        finally:
            for fd in fds:
                os.close(fd)

    def _open_new(self, poller: select.poll, fds: dict[int, str], gone: set[str]) -> set[str]:
        """Open a pidfd for each rank that wrote its PID since the last look; the ranks whose
        process had already ended are returned."""
        ended = set()
        known = set(fds.values()) | gone
        for rank, pid in rank_pids(self.run_dir).items():
            if rank in known:
                continue
            try:
                fd = os.pidfd_open(int(pid))
            except ProcessLookupError:
                ended.add(rank)
                continue
            except (ValueError, OverflowError, OSError):  # not a PID: a stranger's file
                continue
            fds[fd] = rank
            poller.register(fd, select.POLLIN)
        return ended


def rank_pids(run_dir: Path) -> dict[str, str]:
    """Each rank's PID as its worker wrote it to `rank<N>.pid`, by rank; none once the run folder
    is gone, and none for a file that cannot be read."""
    found: dict[str, str] = {}
    try:
        paths = list(run_dir.iterdir())
    except OSError:
        return found
    for path in paths:
        name = PID_FILE.fullmatch(path.name)
        if name:
            try:
                found[name[1]] = path.read_text().strip()
            except OSError:
                continue
    return found
