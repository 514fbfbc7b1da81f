"""The local launcher's private run folders, and the variables that keep a run on loopback.

Command: python -m pytest tests/unit/launch/test_local_run_dirs.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from distbench.launch import local


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_run_folders_of_dead_launchers_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / f"distbench-{dead_pid()}-abc_123"
    (stale / "sub").mkdir(parents=True)
    (stale / "rank0.log").write_text("log")
    live = tmp_path / f"distbench-{os.getpid()}-def456"
    live.mkdir()
    others = [tmp_path / "distbench-serve-xyz", tmp_path / "distbench-comm-1", tmp_path / "other"]
    for folder in others:
        folder.mkdir()
    link = tmp_path / f"distbench-{dead_pid()}-link"
    link.symlink_to(live)
    assert local.remove_stale_run_dirs(tmp_path) == [stale]
    assert not stale.exists()
    assert live.is_dir() and link.is_symlink() and all(f.is_dir() for f in others)


def test_a_run_folder_names_its_launcher_and_clears_stale_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / f"distbench-{dead_pid()}-abcdef"
    stale.mkdir()
    folder = local.run_dir()
    assert folder.parent == tmp_path and folder.name.startswith(f"distbench-{os.getpid()}-")
    assert local.RUN_DIR_NAME.fullmatch(folder.name)
    assert not stale.exists()


def test_a_killed_launcher_leaves_a_folder_that_the_next_start_removes(tmp_path: Path) -> None:
    """The real sequence: a launcher makes its folder and dies by SIGKILL (no cleanup runs)."""
    code = ("import os, signal, tempfile; tempfile.tempdir = os.environ['T']; "
            "from distbench.launch.local import run_dir; print(run_dir(), flush=True); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "T": str(tmp_path)}, timeout=60)
    left = Path(proc.stdout.strip())
    assert proc.returncode < 0 and left.is_dir() and left.parent == tmp_path
    assert local.remove_stale_run_dirs(tmp_path) == [left]


def test_loopback_env_pins_network_libraries_and_keeps_user_choices() -> None:
    names = {name for _, name in socket.if_nameindex()}
    loopback = "lo" if "lo" in names else "lo0" if "lo0" in names else None
    if loopback is None:
        pytest.skip("no loopback interface named lo or lo0")
    assert local.loopback_env({}) == {"GLOO_SOCKET_IFNAME": loopback,
                                      "UCX_NET_DEVICES": loopback, "FI_TCP_IFACE": loopback}
    assert "GLOO_SOCKET_IFNAME" not in local.loopback_env({"GLOO_SOCKET_IFNAME": "eth0"})


def test_the_launcher_returns_its_own_record_among_concurrent_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs started together into one --out append in any order: the launcher finds its record
    by the id it gave its workers, not as the last line of runs.jsonl."""
    from distbench.core.config import RunConfig
    from distbench.results.records import append_record, load_records, make_record
    from distbench.system.launchenv import RUN_ID_VAR

    cfg = RunConfig(out=str(tmp_path))

    def workers_then_a_neighbour(cfg: RunConfig, how: object, run_id: str,
                                 data_key: str | None) -> None:
        monkeypatch.setenv(RUN_ID_VAR, run_id)  # what the workers are given
        append_record(tmp_path, make_record(cfg))
        monkeypatch.delenv(RUN_ID_VAR)
        append_record(tmp_path, make_record(cfg, started_at="another run"))

    monkeypatch.setattr(local, "_launch_workers", workers_then_a_neighbour)
    record = local.launch(cfg)
    first, last = load_records(tmp_path)
    assert record == first and record["run_id"] != last["run_id"]


def test_free_ports_are_distinct_and_free() -> None:
    ports = local.free_ports(64)
    assert len(set(ports)) == 64
    with socket.socket() as s:  # free: each can be bound again
        s.bind(("127.0.0.1", ports[0]))
