"""Start N workers on this machine, watch them, and turn any failure into one clean exit.

Command: distbench run --strategy ddp --workers 2 --dataset mnist-5k

Workers run in their own process sessions so that a whole worker (and anything it started, such
as MPI proxies) can be stopped with one signal. If any worker exits non-zero, the others are
stopped within seconds, a `failed` record is written, and the failing rank's error is reported,
with the reason of every other rank that failed on its own.

A local run talks over loopback only, and listens there where the library allows it: the c10d
store binds 127.0.0.1 (`strategies/torch_dist.py`), and `loopback_env` pins gloo's pairs and
MPICH's UCX and libfabric-tcp endpoints to the loopback interface. Two listeners cannot be moved
off the wildcard address: mpiexec's (Hydra's) control port, which Hydra always binds to INADDR_ANY
(`-iface`/`-localhost` only change the address its proxies dial), and TensorFlow's gRPC server,
whose listening address is fixed to 0.0.0.0:<port> (TF_CONFIG only picks the port).

Each run keeps its worker logs and config in `<tmp>/distbench-<launcher pid>-<random>/`, removed
when the run ends; folders left by a launcher that was killed are removed at the next start.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from distbench.core.config import RunConfig
from distbench.core.errors import (
    DistbenchError,
    UsageError,
    debugging,
    error_line,
    last_error,
)
from distbench.data import prepare_dataset
from distbench.launch.rankwatch import FirstToEnd, rank_pids
from distbench.launch.warmstart import ForkedProcess, start_forked, warm_socket
from distbench.results.records import (
    RUNS_FILE,
    append_record,
    load_records,
    make_record,
    new_run_id,
    utc_now,
)
from distbench.strategies import (
    Launcher,
    StrategyInfo,
    check_workers,
    missing_framework,
    strategy_info,
)
from distbench.system.interrupts import die_with_parent, stop_on_termination
from distbench.system.launchenv import DATA_KEY_VAR, LAUNCH_T0_VAR, RUN_DIR_VAR, RUN_ID_VAR
from distbench.system.threads import usable_cores

POLL_S = 0.05
GRACE_S = 3.0
SETTLE_S = 1.0
LOG_TAIL_LINES = 12
# How mpich's mpiexec (Hydra) reports a rank that died by a signal (a wait status: 9 for
# SIGKILL, 134 for SIGABRT with a core).
HYDRA_DEATH = re.compile(r"PID (\d+) RUNNING AT \S+\s*\n=\s*EXIT CODE: (\d+)")
# Every rank's wait status, by rank, on one host (`-print-all-exitcodes`; 768 is exit code 3).
HYDRA_STATUSES = re.compile(r"^\[mpiexec@\S+\] Exit codes: \[\S+\] (\d+(?:,\d+)*)\s*$", re.M)
# The lines of Hydra's "BAD TERMINATION" banner, which says nothing the reason does not.
HYDRA_BANNER = re.compile(r"=+$|=   |YOUR APPLICATION TERMINATED|This typically refers|Please see "
                          r"the FAQ")
# MPICH's abort line names the rank that gave up: "Abort(...) on node 0 (rank 0 in comm 0): ...".
MPI_ABORT = re.compile(r"^Abort\(\d+\) on node \d+ \(rank (\d+) in comm \d+\)", re.M)


class WorkerFailure(DistbenchError):
    """A worker died or raised; the message is one block naming the rank and its error."""


@dataclass
class Worker:
    rank: int | None  # None: one mpiexec process standing for all ranks
    process: subprocess.Popen[bytes] | ForkedProcess
    log: Path
    watch: FirstToEnd | None = None  # under mpiexec: which rank ended first

    def lines(self) -> list[str]:
        return [
            ln.rstrip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()
        ]

    def killed(self) -> str | None:
        """One line naming the process and the signal that killed it, if one did."""
        code = self.process.returncode
        if getattr(self.process, "server_gone", False):
            return (f"rank {self.rank} was killed: the fork server that started it ended (see "
                    "logs/forkserver-*.log in the study's folder)")
        if code is not None and code < 0:
            who = f"rank {self.rank}" if self.rank is not None else "mpiexec"
            return f"{who} was killed by {signal.Signals(-code).name}"
        return self.rank_killed_under_mpiexec()

    def reason(self) -> str:
        """One line: the signal that killed it, or its own error line (which names its rank)."""
        killed = self.killed()
        if killed:
            return killed
        code = self.process.returncode
        who = f"rank {self.rank}" if self.rank is not None else "mpiexec"
        lines = self.lines()
        error = last_error(lines)
        if error:
            return error
        return f"{who} exited with code {code}: {lines[-1] if lines else 'no output'}"

    def rank_killed_under_mpiexec(self) -> str | None:
        """Hydra reports ranks by PID and exit code; workers left their PIDs in the run dir.

        When a rank dies, Hydra kills the others with the same SIGKILL, so the rank that ended
        first (`rankwatch`) is the cause, and its exit code says how it ended. Without that, one
        rank killed by a signal among ranks that exited is the cause; and a rank reading a dead
        peer's memory inside a collective (MPICH's shared-memory path) aborts at once: when every
        other rank said why it stopped, the one rank that said nothing is the cause."""
        if self.rank is not None:
            return None
        text = self.log.read_text(errors="replace")
        ranks = {pid: rank for rank, pid in rank_pids(self.log.parent).items()}
        statuses = hydra_statuses(text)
        signals = {str(rank): sig for rank, sig in enumerate(map(killed_by, statuses)) if sig}
        first = self.watch.first if self.watch else None
        if first is not None and int(first) < len(statuses) and statuses[int(first)]:
            # The first rank to end failed (one that had finished its work says nothing).
            sig = signals.get(first)
            return f"rank {first} was killed by {sig.name}" if sig else None
        if len(signals) == 1:
            (rank, sig), = signals.items()
            return f"rank {rank} was killed by {sig.name}"
        if len(signals) > 1:
            names = "/".join(sorted({sig.name for sig in signals.values()}))
            return (f"ranks {', '.join(signals)} were killed by {names}: mpiexec kills the "
                    "others when one dies, and which died first was not seen")
        match = HYDRA_DEATH.search(text)
        sig = killed_by(int(match[2])) if match else None
        if match and sig:
            pid = match[1]
            # A rank killed before it wrote its PID file is named by its PID.
            who = f"rank {ranks[pid]}" if pid in ranks else f"an MPI rank (PID {pid})"
            return f"{who} was killed by {sig.name}"
        spoke = set(MPI_ABORT.findall(text))
        silent = sorted(set(ranks.values()) - spoke)
        if not match and spoke and len(silent) == 1:
            return (f"rank {silent[0]} ended without a message, most likely killed by a signal "
                    f"(mpiexec did not report how); rank {min(spoke)}'s collective with it "
                    "failed")
        return None

    def report(self) -> str:
        """The reason, then the end of the log when there is more to it (a traceback); a killed
        process left nothing to add, and Hydra's banner about it is left out; a refusal of bad
        input (exit 2) is its one line."""
        killed = self.killed()
        if killed:
            return killed
        reason = self.reason()
        if self.process.returncode == UsageError.exit_code and not debugging():
            return reason
        tail = [ln for ln in self.lines()[-LOG_TAIL_LINES:]
                if error_line(reason).strip() != ln and not HYDRA_BANNER.match(ln)]
        return "\n".join([reason, *("    " + ln for ln in tail)])


def hydra_statuses(text: str) -> list[int]:
    """Each rank's wait status from mpiexec's last report of them, by rank; empty without one.
    A local run's ranks share one host, so one list is all of them."""
    lines = HYDRA_STATUSES.findall(text)
    return [int(status) for status in lines[-1].split(",")] if lines else []


def killed_by(status: int) -> signal.Signals | None:
    """The signal that ended a process, from its wait status; None for an exit."""
    try:
        code = os.waitstatus_to_exitcode(status)
        return signal.Signals(-code) if code < 0 else None
    except (ValueError, OverflowError):  # not the status of an ended process
        return None


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback now. Each is held until all are picked: a port
    released may be handed out again at once, and of two TensorFlow workers given the same one,
    the second fails to start ("Could not start gRPC server")."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                   for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def mpiexec_path() -> str:
    """mpiexec from this environment (the mpich wheel) first, then the system's."""
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if not found:
        raise DistbenchError('no mpiexec found: pip install "distbench[mpi]" (the mpich wheel)')
    return found


def mpiexec_command(processes: int) -> list[str]:
    """mpiexec for `processes` ranks; Hydra (MPICH's) is asked for every rank's exit status, as
    its banner names only one rank, the lowest it saw fail."""
    path = mpiexec_path()
    return [path, *(["-print-all-exitcodes"] if _is_hydra(path) else []), "-n", str(processes)]


@functools.cache
def _is_hydra(mpiexec: str) -> bool:
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                                 timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False  # then it will fail to start, and say why, where it is run
    return "HYDRA" in version.stdout


def launch(cfg: RunConfig) -> dict:
    """Run `cfg` on this machine; returns rank 0's record, raises on failure after recording it."""
    info = strategy_info(cfg.strategy)
    hint = missing_framework(cfg.strategy)
    if hint:
        raise DistbenchError(hint)
    check_workers(cfg.strategy, cfg.workers)
    data_key = prepare_dataset(cfg.data, cfg.model.image_size)
    started_at = utc_now()
    # Rank 0's record carries this id: other runs may append to the same --out meanwhile.
    run_id = new_run_id()
    try:
        with stop_on_termination():
            _launch_workers(cfg, info, run_id, data_key)
        for record in load_records(cfg.out or "."):
            if record.get("run_id") == run_id:
                return record
        raise DistbenchError(f"the workers ended without writing the record of run {run_id}")
    except KeyboardInterrupt:
        _record_failure(cfg, "interrupted by the user", started_at, run_id)
        raise
    except DistbenchError as exc:
        # A worker that refused its input (the user's model, on its dummy batch) ran nothing:
        # like any refused run, it leaves no record.
        if exc.exit_code != UsageError.exit_code:
            _record_failure(cfg, str(exc).splitlines()[0], started_at, run_id)
        raise
    except Exception as exc:
        _record_failure(cfg, f"{type(exc).__name__}: {exc}", started_at, run_id)
        raise


def _record_failure(cfg: RunConfig, reason: str, started_at: str, run_id: str) -> None:
    """The run's `failed` record, under its own id; none where rank 0 recorded the run before a
    peer failed (after the last collective, on its way out): one run, one record."""
    out = cfg.out or "."
    runs = Path(out) / RUNS_FILE
    with contextlib.suppress(DistbenchError):  # unreadable: the append below will say so
        if runs.exists() and any(r.get("run_id") == run_id for r in load_records(runs)):
            return
    append_record(out, make_record(cfg, "failed", reason, started_at=started_at, run_id=run_id))


RUN_DIR_PREFIX = "distbench-"
# A run folder's name: the prefix, the launcher's PID, then mkdtemp's random part.
RUN_DIR_NAME = re.compile(rf"{RUN_DIR_PREFIX}(\d+)-[A-Za-z0-9_]+")


def run_dir() -> Path:
    """A fresh private folder for one run (or one `distbench serve` page), named after this
    process's PID; stale ones go first."""
    remove_stale_run_dirs()
    return Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-"))


def remove_stale_run_dirs(root: str | Path | None = None) -> list[Path]:
    """Remove this user's run folders whose launcher is gone (killed before it could clean up).

    Only folders named by `run_dir`, owned by this user and not symlinks are touched; a reused
    PID merely keeps a stale folder until a later start.
    """
    removed = []
    for entry in Path(root or tempfile.gettempdir()).glob(f"{RUN_DIR_PREFIX}*"):
        match = RUN_DIR_NAME.fullmatch(entry.name)
        try:
            info = entry.lstat()
        except OSError:
            continue
        if (match and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
                and not _alive(int(match[1]))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def loopback_env(env: dict[str, str]) -> dict[str, str]:
    """Interface variables that keep a one-machine run's sockets on the loopback interface.

    gloo listens on the address of the host name unless told an interface (on many machines a
    LAN address); MPICH's UCX and libfabric-tcp netmods listen on every network interface. Only
    the network endpoints move: ranks on one machine still talk through shared memory. A value
    the user set is kept.
    """
    names = {name for _, name in socket.if_nameindex()}
    loopback = next((n for n in ("lo", "lo0") if n in names), None)
    if loopback is None:
        return {}
    wanted = dict.fromkeys(("GLOO_SOCKET_IFNAME", "UCX_NET_DEVICES", "FI_TCP_IFACE"), loopback)
    return {k: v for k, v in wanted.items() if k not in env}


def _launch_workers(cfg: RunConfig, info: StrategyInfo, run_id: str,
                    data_key: str | None) -> None:
    how = info.launcher
    tmp = run_dir()
    try:
        config_file = tmp / "config.json"
        config_file.write_text(json.dumps(cfg.to_dict()))
        starter = Starter(["worker", "--config", str(config_file)],
                          warm_socket(info.framework.value))
        processes = cfg.workers if how.multi_process else 1
        threads = cfg.threads_per_worker or max(1, usable_cores() // processes)
        env = {
            **os.environ,
            LAUNCH_T0_VAR: repr(time.time()),
            RUN_DIR_VAR: str(tmp),
            RUN_ID_VAR: run_id,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port()),
            "OMP_NUM_THREADS": str(threads),
        }
        env.pop(DATA_KEY_VAR, None)  # never one inherited from elsewhere
        if data_key:
            env[DATA_KEY_VAR] = data_key
        env.update(loopback_env(env))
        workers: list[Worker] = []
        try:
            _start_workers(workers, how, processes, starter, env, tmp)
        except BaseException:  # a failure or Ctrl-C while starting: stop those already started
            _stop(workers)
            raise
        supervise(workers, cfg.timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Starter:
    """How this run's workers start: exec'd as `python -m distbench <argv>`, or forked by the
    study's fork server for their framework (`launch.warmstart`) where `warm` names one."""

    argv: list[str]
    warm: Path | None

    def command(self) -> list[str]:
        """What a launcher that execs (mpiexec) starts for each rank."""
        if self.warm is None:
            return [sys.executable, "-m", "distbench", *self.argv]
        return [sys.executable, "-m", "distbench.launch.warmstart", str(self.warm), *self.argv]

    def start(self, env: dict[str, str], log: Path, show_stdout: bool
              ) -> subprocess.Popen[bytes] | ForkedProcess:
        if self.warm is None:
            return start_process(self.command(), env, log, show_stdout)
        with log.open("wb") as fh, open(os.devnull, "rb") as null:
            return start_forked(self.warm, self.argv, env,
                                {0: null.fileno(), 1: 1 if show_stdout else fh.fileno(),
                                 2: fh.fileno()})


def _start_workers(workers: list[Worker], how: Launcher, processes: int, starter: Starter,
                   env: dict[str, str], tmp: Path) -> None:
    """Start the worker processes, appending each to `workers` as soon as it runs."""
    if how is Launcher.MPIEXEC:
        log = tmp / "mpiexec.log"
        cmd = [*mpiexec_command(processes), *starter.command()]
        watch = FirstToEnd(tmp, processes)
        try:
            process = start_process(cmd, env, log, show_stdout=False)
        except BaseException:
            watch.stop()
            raise
        workers.append(Worker(None, process, log, watch))
        return
    tf_hosts = [f"127.0.0.1:{port}" for port in free_ports(processes)]
    for rank in range(processes):
        rank_env = {**env, "RANK": str(rank), "WORLD_SIZE": str(processes),
                    "LOCAL_RANK": str(rank)}
        if how is Launcher.TF_CONFIG:
            rank_env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": tf_hosts}, "task": {"type": "worker", "index": rank}}
            )
        log = tmp / f"rank{rank}.log"
        workers.append(Worker(rank, starter.start(rank_env, log, rank == 0), log))


def start_process(
    cmd: list[str], env: dict[str, str], log: Path, show_stdout: bool
) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=None if show_stdout else fh,
            stderr=fh,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def supervise(workers: list[Worker], timeout: float | None) -> None:
    """Wait for all workers; on the first failure or the deadline, stop everyone and raise."""
    try:
        _wait_for(workers, timeout)
    finally:
        _end_watches(workers)


def _wait_for(workers: list[Worker], timeout: float | None) -> None:
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while True:
            codes = [w.process.poll() for w in workers]
            if all(c == 0 for c in codes):
                return
            failed = [w for w, c in zip(workers, codes) if c not in (None, 0)]
            if failed:
                failed.sort(key=_cause_first)
                failed += _settle([w for w in workers if w not in failed])
                failed.sort(key=lambda w: _cause_first(w)[0])  # stable: first seen stays first
                _stop(workers)
                raise _failure(failed)
            if deadline is not None and time.monotonic() > deadline:
                _stop(workers)
                raise WorkerFailure(
                    f"run timed out after {timeout:g} s (--timeout); workers stopped"
                )
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        _stop(workers)
        raise


def _cause_first(worker: Worker) -> tuple[bool, int]:
    """A signal death is the cause; peers failing on the broken connection are effects."""
    return worker.process.returncode >= 0, worker.rank or 0


def _failure(failed: list[Worker]) -> WorkerFailure:
    """The first failure's report, then each other rank's own reason where it says more than
    the first's; a refusal of bad input (exit 2) stays the one line it is, and makes the whole
    run a usage error."""
    first = failed[0]
    refused = first.process.returncode == UsageError.exit_code
    lines = [first.report()]
    if not refused or debugging():
        seen = {_unranked(first.reason())}
        for worker in failed[1:]:
            reason = worker.reason()
            if _unranked(reason) not in seen:
                seen.add(_unranked(reason))
                lines.append(f"also: {reason}")
    failure = WorkerFailure("\n".join(lines))
    if refused:
        failure.exit_code = UsageError.exit_code
    return failure


def _unranked(reason: str) -> str:
    """A reason without the rank it names, so that ranks failing alike count once."""
    return re.sub(r"\brank \d+\b", "rank", reason)


def _settle(peers: list[Worker]) -> list[Worker]:
    """The peers that failed on their own, given a moment to: ranks that fail together are seen
    by the same poll, and the lowest rank, reported first, may only have lost its connection to
    the one whose error is the cause (a peer that exited closes its sockets), so every rank's
    own reason is reported. A peer still running after SETTLE_S is stopped, not waited for."""
    end = time.monotonic() + SETTLE_S
    while time.monotonic() < end and any(w.process.poll() is None for w in peers):
        time.sleep(POLL_S)
    return [w for w in peers if w.process.poll() not in (None, 0)]


def _stop(workers: list[Worker]) -> None:
    """SIGTERM every worker's process group, then SIGKILL what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for w in workers:
            try:
                os.killpg(w.process.pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + GRACE_S
        while time.monotonic() < end and any(w.process.poll() is None for w in workers):
            time.sleep(POLL_S)
    for w in workers:
        w.process.wait()
    _end_watches(workers)


def _end_watches(workers: list[Worker]) -> None:
    """Once the processes have ended: what the watches saw is final, and their threads end."""
    for w in workers:
        if w.watch:
            w.watch.stop()
