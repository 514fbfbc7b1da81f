"""A local run listens on loopback only, wherever the library lets it choose.

Command: python -m pytest tests/multiproc/test_local_listeners.py

While `distbench run` trains, the listening TCP sockets of every process it started are read
from /proc (the socket tables and each process's descriptors) and must all be bound to a loopback
address. Known exceptions, which no option can move: mpiexec's (Hydra's) control port, held by
mpiexec and inherited by its children, and TensorFlow's gRPC server (not run here).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distbench.strategies import missing_framework

RUN = ["--workers", "2", "--dataset", "synthetic", "--synthetic-samples", "4096",
       "--model", "mlp-25", "--epochs", "3", "--batch-size", "64", "--no-progress"]
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp*

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc/net/tcp"),
]


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening_sockets() -> dict[str, str]:
    """inode -> "address:port" of every listening TCP socket in this network namespace."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).is_file():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                addr, port = fields[1].split(":")
                out[fields[9]] = f"{_address(addr)}:{int(port, 16)}"
    return out


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit():
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:  # the process ended meanwhile
        pass
    return inodes


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def watch_run(strategy: str, out: Path) -> tuple[dict[str, str], set[str]]:
    """Run to the end; returns {"address:port": command} seen listening, and the listeners
    held by mpiexec itself (Hydra's control port)."""
    proc = subprocess.Popen([sys.executable, "-m", "distbench", "run", "--strategy", strategy,
                             *RUN, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: dict[str, str] = {}
    hydra: set[str] = set()
    while proc.poll() is None:
        table = listening_sockets()
        for pid in descendants(proc.pid):
            for inode in socket_inodes(pid) & set(table):
                seen.setdefault(table[inode], command(pid))
                if Path(command(pid).split(" ")[0]).name.startswith("mpiexec"):
                    hydra.add(table[inode])
        time.sleep(0.1)
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, output
    return seen, hydra


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@pytest.mark.parametrize("strategy", ["ddp", "mpi"])
def test_workers_listen_on_loopback_only(strategy: str, tmp_path: Path) -> None:
    hint = missing_framework(strategy)
    if hint:
        pytest.skip(hint)
    seen, hydra = watch_run(strategy, tmp_path / "out")
    assert seen, "no listening socket observed: the run ended before it could be watched"
    exposed = {addr: cmd for addr, cmd in seen.items()
               if addr not in hydra and not is_loopback(addr)}
    assert not exposed, exposed
