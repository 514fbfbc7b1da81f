"""Warm start: workers forked from an interpreter that has already imported their framework.

Command: distbench compare (every row of a study starts its workers this way; --worker-start exec
starts each from a fresh interpreter instead)

A PyTorch worker spends about 3.5 s importing torch and `torch._dynamo` (which the first
`torch.optim` optimizer imports), a TensorFlow worker about 5 s importing TensorFlow, against
0.3-1.5 s of training per run of the default study. A study starts one fork server per framework
(`distbench.cli.forkserver`), which imports the framework once and then forks every worker of
every row of that framework: a fresh process each time, with the launcher's environment, file
descriptors, working directory and arguments, which then runs the `distbench worker` an exec'd
worker runs. The imports (and what they fixed when they loaded) are shared; the record says how
the worker started (`worker_start`).

Here: the client side (the launcher's handle on a forked worker, and the stand-in that mpiexec
starts in place of a worker) and the pool of servers a study keeps. The protocol is one request
per connection: a length-prefixed JSON request with the file descriptors to install, then the
server's answers, one JSON line each: the worker's PID, later its exit as a Popen returncode. The
connection is the worker's lifeline: when the requester goes away (even by SIGKILL) the server
kills the worker's process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distbench.core.errors import DistbenchError
from distbench.system.interrupts import die_with_parent
from distbench.system.launchenv import WARM_DIR_VAR

HEADER = struct.Struct("!I")  # the request's length
# What a stand-in passes on to its worker (mpiexec forwards these to its ranks).
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)
MAX_SOCKET_PATH = 107  # sockaddr_un's path, less its terminating NUL
# How a study's workers start (`--worker-start`): forked from a fork server, or exec'd.
WORKER_STARTS = ("fork", "exec")
MAX_REQUEST = 4 << 20  # a request is an environment and an argv: megabytes would be hostile
MAX_FDS = 8
READY = "ready"
START_TIMEOUT_S = 120.0  # importing TensorFlow on a cold disk takes seconds, not minutes


def socket_path(folder: str | Path, framework: str) -> Path:
    return Path(folder) / f"{framework}.sock"


def warm_socket(framework: str, env: dict[str, str] | None = None) -> Path | None:
    """The fork server this launcher should ask for `framework`'s workers, if a study gave one."""
    folder = (os.environ if env is None else env).get(WARM_DIR_VAR)
    return socket_path(folder, framework) if folder else None


# --------------------------------------------------------------------------- the protocol


def send_request(sock: socket.socket, request: dict[str, Any], fds: Sequence[int]) -> None:
    body = json.dumps(request).encode()
    socket.send_fds(sock, [HEADER.pack(len(body))], list(fds))
    sock.sendall(body)


def recv_request(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request and the descriptors that came with it (the caller owns and closes them).
    Anything malformed raises ValueError, with the descriptors closed."""
    head, fds, _, _ = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    try:
        if len(head) != HEADER.size:
            raise ValueError("truncated request")
        (size,) = HEADER.unpack(head)
        if size > MAX_REQUEST:
            raise ValueError(f"request of {size} bytes")
        body = bytearray()
        while len(body) < size:
            chunk = sock.recv(size - len(body))
            if not chunk:
                raise ValueError("truncated request")
            body += chunk
        request = json.loads(body)
        check_request(request, len(fds))
    except BaseException:  # a stalled or malformed request: no descriptor of it stays open
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


def check_request(request: Any, fds: int) -> None:
    """The shape `fork_worker` relies on; a peer is the same user, but a bug is not a crash."""
    ok = (isinstance(request, dict)
          and isinstance(request.get("argv"), list)
          and all(isinstance(a, str) for a in request["argv"])
          and isinstance(request.get("env"), dict)
          and all(isinstance(k, str) and isinstance(v, str) and "=" not in k and "\0" not in k + v
                  for k, v in request["env"].items())
          and isinstance(request.get("cwd"), str)
          and isinstance(request.get("fds"), list) and len(request["fds"]) == fds
          and all(isinstance(t, int) and 0 <= t < 1024 for t in request["fds"])
          and {0, 1, 2} <= set(request["fds"]) and len(set(request["fds"])) == fds
          and isinstance(request.get("pid"), int))
    if not ok:
        raise ValueError("malformed request")


# --------------------------------------------------------------------------- the client


class ForkedProcess:
    """A worker forked by a fork server: what the launcher uses of `subprocess.Popen`.

    Its exit comes over the connection; a server that died first (the worker dies with it)
    reads as SIGKILL, with `server_gone` set so that the launcher names the server."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""
        self.poller = select.poll()  # the launcher polls every worker every 50 ms
        self.poller.register(sock, select.POLLIN)
        self.server_gone = False
        line = self._next_line(START_TIMEOUT_S)
        if not line:
            sock.close()
            raise DistbenchError("the fork server did not start the worker (see "
                                 "logs/forkserver-*.log in the study's folder)")
        self.pid: int = int(json.loads(line)["pid"])
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_exit(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._read_exit(timeout):
            raise subprocess.TimeoutExpired("forked worker", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def _read_exit(self, timeout: float | None) -> bool:
        line = self._next_line(timeout)
        if line is None:
            return False
        self.server_gone = not line
        self.returncode = int(json.loads(line)["returncode"]) if line else -signal.SIGKILL
        self.sock.close()
        return True

    def _next_line(self, timeout: float | None) -> bytes | None:
        """The server's next answer; None if none came within `timeout`, b"" once it closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.poller.poll(None if left is None else left * 1000):
                return None
            chunk = self.sock.recv(4096)
            if not chunk:
                return b""
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def start_forked(path: Path, argv: list[str], env: dict[str, str], fds: dict[int, int],
                 host_pid: int | None = None) -> ForkedProcess:
    """Ask the server at `path` to fork a worker running `distbench <argv>`.

    `fds` maps the worker's descriptor numbers to ours (0, 1 and 2 at least); `host_pid` is the
    PID the launcher knows the worker by when a stand-in started it (see `stand_in`)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise DistbenchError(f"the fork server at {path} does not answer ({exc.strerror}); run "
                             "again, or with --worker-start exec") from None
    request = {"argv": argv, "env": env, "cwd": os.getcwd(), "fds": list(fds),
               "pid": host_pid or 0}
    send_request(sock, request, list(fds.values()))
    return ForkedProcess(sock)


def stand_in(path: str, argv: list[str]) -> int:
    """What mpiexec starts for each rank under a warm start: the rank's worker is forked by the
    server, with this process's environment and its PMI descriptor (Hydra's wire to the rank),
    and this process lives and dies with it. Signals it gets go to the worker; the worker's
    death by a signal is repeated here, so that Hydra reports it like a worker's own."""
    fds = {n: n for n in (0, 1, 2)}
    pmi_fd = os.environ.get("PMI_FD", "")
    if pmi_fd.isdigit():
        fds[int(pmi_fd)] = int(pmi_fd)
    worker = start_forked(Path(path), argv, dict(os.environ), fds, host_pid=os.getpid())

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    code = worker.wait()
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # the two that take no handler
            signal.signal(-code, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the worker's core is the one
        os.kill(os.getpid(), -code)
    return code


# --------------------------------------------------------------------------- a study's servers


class WarmPool:
    """The fork servers of one study, one per framework, each started on first use; each logs
    to `logs/forkserver-<framework>.log`."""

    def __init__(self, folder: Path, logs: Path) -> None:
        self.folder, self.logs = folder, logs
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.start_s: dict[str, float] = {}

    @property
    def env(self) -> dict[str, str]:
        """What a launcher started by the study needs to find the servers."""
        return {WARM_DIR_VAR: str(self.folder)}

    def ensure(self, framework: str) -> None:
        """A live server for `framework`: started now (its import time is kept in `start_s`)
        unless one is running."""
        server = self.servers.get(framework)
        if server is not None and server.poll() is None:
            return
        if server is not None:  # died: a new one takes its place
            self.stop(framework)
        path = socket_path(self.folder, framework)
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise DistbenchError(f"{path}: too long for a Unix socket; set TMPDIR to a shorter "
                                 "folder, or use --worker-start exec")
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"forkserver-{framework}.log"
        path.unlink(missing_ok=True)
        start = time.monotonic()
        with log.open("ab") as fh:
            server = subprocess.Popen(
                [sys.executable, "-m", "distbench.cli.forkserver", framework, str(path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=fh,
                start_new_session=True, preexec_fn=die_with_parent)
        self.servers[framework] = server
        assert server.stdout is not None
        poller = select.poll()
        poller.register(server.stdout, select.POLLIN)
        ready = (server.stdout.readline().decode(errors="replace").strip()
                 if poller.poll(START_TIMEOUT_S * 1000) else "")
        if ready != READY:
            self.stop(framework)
            lines = log.read_text(errors="replace").strip().splitlines() or [
                f"no answer in {START_TIMEOUT_S:g} s"]
            raise DistbenchError(f"the {framework} fork server did not start ({lines[-1]}); "
                                 f"its log is {log}; start the study with --worker-start exec")
        self.start_s[framework] = self.start_s.get(framework, 0.0) + time.monotonic() - start

    def stop(self, framework: str) -> None:
        server = self.servers.pop(framework)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        if server.stdout is not None:
            server.stdout.close()

    def close(self) -> None:
        for framework in list(self.servers):
            self.stop(framework)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def warm_pool(folder: Path, logs: Path) -> Iterator[WarmPool]:
    pool = WarmPool(folder, logs)
    try:
        yield pool
    finally:
        pool.close()


if __name__ == "__main__":  # python -m distbench.launch.warmstart <socket> <distbench argv...>
    raise SystemExit(stand_in(sys.argv[1], sys.argv[2:]))
