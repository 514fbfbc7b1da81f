"""The fork server (`distbench.cli.forkserver`) and its client (`distbench.launch.warmstart`): a
forked worker gets the requester's descriptors, environment and working directory, its exit and
its death by a signal come back as a Popen returncode, it dies when its requester does, and a
malformed request is refused without taking the server down.

Command: python -m pytest tests/unit/launch/test_warmstart.py

One real PyTorch fork server for the module (importing torch once takes seconds).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distbench.core.errors import DEBUG_VAR
from distbench.launch.warmstart import ForkedProcess, socket_path, start_forked, warm_pool

LONG = ["worker", "--strategy", "single", "--dataset", "synthetic", "--synthetic-samples",
        "20000", "--model", "mlp-25", "--batch-size", "8", "--epochs", "50", "--no-progress"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("warm")
    with warm_pool(folder, folder.parent / "logs") as pool:
        pool.ensure("pytorch")
        yield socket_path(folder, "pytorch")
    assert not folder.exists(), "the pool removes its folder"


def fork(server: Path, log: Path, argv: list[str], **env: str) -> ForkedProcess:
    with log.open("wb") as fh, open(os.devnull, "rb") as null:
        return start_forked(server, argv, {**os.environ, **env},
                            {0: null.fileno(), 1: fh.fileno(), 2: fh.fileno()})


def gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_the_worker_has_the_requesters_cwd_env_and_descriptors(server: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)  # the relative path resolves in the worker's directory
    log = tmp_path / "worker.log"
    proc = fork(server, log, ["worker", "--config", "bad.json"], **{DEBUG_VAR: "1"})
    assert proc.wait(timeout=60) == 2  # a refused input
    text = log.read_text()
    assert "bad.json" in text and "Traceback" in text, text  # DEBUG_VAR reached it
    assert proc.poll() == 2


def test_a_death_by_signal_comes_back_as_popen_says_it(server: Path, tmp_path: Path) -> None:
    proc = fork(server, tmp_path / "worker.log", [*LONG, "--out", str(tmp_path)])
    assert proc.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # its own session, as an exec'd worker's
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_a_worker_dies_with_its_requester(server: Path, tmp_path: Path) -> None:
    proc = fork(server, tmp_path / "worker.log", [*LONG, "--out", str(tmp_path)])
    assert not gone(proc.pid, 1.0)
    proc.sock.close()  # the launcher died: nobody watches this worker any more
    assert gone(proc.pid, 10.0), "the worker outlived its requester"


@pytest.mark.parametrize("garbage", [b"", b"\x00\x00\x00\x05{}}}}", b"\xff\xff\xff\xff",
                                     b"\x00\x00\x00\x02[]"])
def test_a_malformed_request_is_refused_and_the_server_serves_on(server: Path, tmp_path: Path,
                                                                 garbage: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(server))
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(15)
        assert sock.recv(100) == b""  # closed without a PID
    proc = fork(server, tmp_path / "worker.log", ["worker", "--config", "missing.json"])
    assert proc.wait(timeout=60) == 2
