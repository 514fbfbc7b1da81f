"""The fork server of a warm start: imports one framework, then forks workers on request.

Command: python -m distbench.cli.forkserver pytorch <socket> (started by `distbench compare`;
see `distbench.launch.warmstart` for why and for the protocol)

It stays single-threaded in Python and never runs a framework operation, so that each fork copies
an interpreter whose framework is imported but not started: thread pools, devices, MPI and
TensorFlow's runtime are all set up by the worker, as in an exec'd one. The child becomes the
worker before it runs a line of distbench: its own session, the requester's descriptors,
environment, working directory, and death with this server.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import warnings
from typing import Any, NoReturn

from distbench.cli.main import main
from distbench.cli.worker import remove_autograph_files
from distbench.launch.warmstart import READY, recv_request
from distbench.strategies import Framework
from distbench.system.interrupts import die_with_parent
from distbench.system.launchenv import HOST_PID_VAR, WORKER_START_VAR
from distbench.system.threads import apply_wait_defaults

# What a worker of the framework imports before it trains, the slow part first. torch._dynamo
# is imported by the first torch.optim optimizer (through torch._disable_dynamo); TensorFlow
# itself comes first, through `tf_base.import_tensorflow` (see `serve`).
PRELOAD = {
    Framework.PYTORCH: ("torch", "torch._dynamo", "torch.distributed",
                        "distbench.training.torch_trainer"),
    Framework.TENSORFLOW: ("distbench.training.keras_trainer",),
}
PEER_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class Server:
    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        # SIGCHLD wakes the loop through this pipe; the handler itself does nothing.
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.wake_w = wake_w
        self.workers: dict[int, socket.socket | None] = {}  # pid -> its requester's connection

    def loop(self) -> NoReturn:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.listener:
                    self.accept()
                elif key.fileobj == self.wake_r:
                    os.read(self.wake_r, 4096)
                    self.reap()
                elif key.fileobj in self.workers.values():  # not reaped earlier in this batch
                    self.requester_gone(key.fileobj)  # type: ignore[arg-type]

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            _, uid, _ = PEER_CRED.unpack(
                conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEER_CRED.size))
            if uid != os.getuid():
                raise ValueError(f"a peer of uid {uid}")
            conn.settimeout(10.0)  # a requester that stalls mid-request cannot stall the server
            request, fds = recv_request(conn)
            conn.settimeout(None)
        except Exception as exc:  # noqa: BLE001 - a bad request must not end the server
            print(f"refused a request: {exc}", file=sys.stderr, flush=True)
            conn.close()
            return
        try:
            pid = os.fork()
        except OSError as exc:
            print(f"cannot fork a worker: {exc}", file=sys.stderr, flush=True)
            pid = -1
        if pid == 0:
            self.become_worker(request, fds, conn)
        for fd in fds:
            os.close(fd)
        if pid < 0:
            conn.close()  # the requester reads no PID: a one-line error on its side
            return
        self.workers[pid] = conn
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:
            self.requester_gone(conn)
            return
        self.selector.register(conn, selectors.EVENT_READ)

    def requester_gone(self, conn: socket.socket) -> None:
        """The requester sends nothing after its request: readable means it closed (or died),
        and nobody is left to watch the worker."""
        pid = next(p for p, c in self.workers.items() if c is conn)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        conn.close()
        self.workers[pid] = None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the worker and whatever it started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # not yet reaped: the PID is still this one's

    def reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.workers.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            with contextlib.suppress(OSError):
                code = os.waitstatus_to_exitcode(status)
                conn.sendall(json.dumps({"returncode": code}).encode() + b"\n")
            conn.close()

    def become_worker(self, request: dict[str, Any], fds: list[int],
                      conn: socket.socket) -> NoReturn:
        """In the child: shed the server, take on the requester's process state, run the
        worker, and leave with its exit code (never returning into the server's loop)."""
        code: int = 1
        try:
            os.setsid()  # first: a signal to the worker's group must reach it from now on
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            for other in (self.listener, conn,
                          *(c for c in self.workers.values() if c is not None)):
                other.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            die_with_parent()
            # Lift every received descriptor above every number involved before placing any.
            floor = max(*fds, *request["fds"]) + 1
            lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in fds]
            for fd in fds:
                os.close(fd)
            for fd, target in zip(lifted, request["fds"]):
                os.dup2(fd, target)
                os.close(fd)
            os.environ.clear()
            os.environ.update(request["env"])
            os.environ[WORKER_START_VAR] = "fork"
            if request["pid"]:
                os.environ[HOST_PID_VAR] = str(request["pid"])
            os.chdir(request["cwd"])
            sys.argv = ["distbench", *request["argv"]]
            code = main(request["argv"])
        except SystemExit as exc:  # as the interpreter ends on it
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException:  # noqa: BLE001 - the traceback goes to the worker's log
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            with contextlib.suppress(Exception):
                remove_autograph_files()  # a worker that failed did not reach end_process
            os._exit(code if isinstance(code, int) else 1)


def serve(framework: str, path: str) -> NoReturn:
    """Started with `die_with_parent`: the server, and with it its workers, end with the study."""
    apply_wait_defaults()  # libgomp reads it when torch loads it, here
    # The interpreter has the frameworks' helper threads (OpenBLAS's pool, which re-creates
    # itself after a fork) but no Python thread: the fork is the one the worker design needs.
    warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead to deadlocks")
    if Framework(framework) is Framework.TENSORFLOW:
        from distbench.strategies.tf_base import import_tensorflow

        import_tensorflow()  # with the environment a worker's strategy sets before it imports
    for module in PRELOAD[Framework(framework)]:
        importlib.import_module(module)
    # What the imports allocated is never garbage: frozen, a worker's collections neither walk
    # it nor write to (and so copy) its pages; the driver freezes an exec'd worker's alike.
    gc.collect()
    gc.freeze()
    server = Server(path)
    print(READY, flush=True)
    server.loop()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
