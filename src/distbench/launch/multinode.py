"""torchrun and mpiexec across several nodes: print each node's command, or run them all when
every node named is this machine (a multi-node rehearsal on one box).

Command: distbench launch torchrun --nodes 2 --hostfile hosts --strategy ddp -- --dataset mnist-5k
         distbench launch mpiexec --nodes 2 --hostfile hosts --strategy mpi -- --dataset mnist-5k

The hostfile lists one host per line (`host` or mpich's `host:slots`; `#` comments). The first
host is the rendezvous point. torchrun uses its static rendezvous (`--rdzv-endpoint` with an
explicit `--node-rank` per node); mpiexec (Hydra) gets the hostfile itself with `-f`.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from distbench.core.errors import DistbenchWarning, UsageError
from distbench.launch.local import (
    Worker,
    free_port,
    mpiexec_path,
    run_dir,
    start_process,
    supervise,
)
from distbench.launch.netns import check_netns, netns_commands
from distbench.launch.scripts import (
    flag_value,
    launched_by,
    quote,
    relative_user_paths,
    worker_args,
)
from distbench.strategies import Launcher
from distbench.system.launchenv import LAUNCH_T0_VAR
from distbench.system.threads import usable_cores
from distbench.vcluster.cluster import require_root_and_tools

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def read_hostfile(path: str, nodes: int) -> list[str]:
    """The first `nodes` hosts of a hostfile; too few is a usage error."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"hostfile {path} not found")
    lines = [ln.split("#")[0] for ln in p.read_text().splitlines()]
    hosts = [_host(ln) for ln in lines if ln.strip()]
    if len(hosts) < nodes:
        raise UsageError(f"--nodes {nodes} but hostfile {path} lists {len(hosts)} host(s)")
    return hosts[:nodes]


def _host(line: str) -> str:
    """The host of a hostfile line: `host`, `host:4` (MPICH), `host slots=4` (Open MPI), or an
    IPv6 address such as `::1`, whose colons are not a count."""
    token = line.split()[0]
    name, sep, count = token.rpartition(":")
    return name if sep and count.isdigit() and ":" not in name else token


def is_local(host: str) -> bool:
    return host in LOCAL_NAMES or host in (socket.gethostname(), socket.getfqdn())


@dataclass
class MultiNode:
    launcher: str  # torchrun | mpiexec
    strategy: str
    hosts: list[str]
    nproc_per_node: int
    run_args: list[str]
    port: int = 29500
    python: str = "python3"
    hostfile: str = ""
    netns: bool = False  # each host is a node of `distbench cluster up`: run inside its namespace

    def validate(self) -> None:
        if self.nproc_per_node < 1:
            raise UsageError(f"--nproc-per-node must be >= 1, got {self.nproc_per_node}")
        if not 1 <= self.port <= 65535:
            raise UsageError(f"--port must be in [1, 65535], got {self.port}")
        kinds = (Launcher.SPAWN,) if self.launcher == "torchrun" else (Launcher.MPIEXEC,
                                                                         Launcher.SPAWN)
        if self.netns and self.launcher == "torchrun":
            kinds += (Launcher.TF_CONFIG,)  # one command per node: the workers themselves
        allowed = launched_by(*kinds)
        if self.strategy not in allowed:
            raise UsageError(f"{self.launcher} launches {', '.join(allowed)}, not {self.strategy}")
        if self.netns:
            check_netns(self.strategy, self.nproc_per_node)

    def commands(self) -> list[list[str]]:
        """One command per node (torchrun) or one for all (mpiexec, which reaches every node)."""
        if self.netns:
            return netns_commands(self)
        py = self.python
        worker = worker_args(self.strategy, self.run_args)
        if self.launcher == "mpiexec":
            return [
                [
                    mpiexec_path(),
                    "-f",
                    self.hostfile,
                    "-n",
                    str(len(self.hosts) * self.nproc_per_node),
                    "-ppn",
                    str(self.nproc_per_node),
                    "-genv",
                    "MASTER_ADDR",
                    self.hosts[0],
                    "-genv",
                    "MASTER_PORT",
                    str(self.port),
                    py,
                    *worker,
                ]
            ]
        return [
            [
                py,
                "-m",
                "torch.distributed.run",
                f"--nnodes={len(self.hosts)}",
                f"--node-rank={rank}",
                f"--nproc-per-node={self.nproc_per_node}",
                "--rdzv-backend=static",
                f"--rdzv-endpoint={self.hosts[0]}:{self.port}",
                *worker,
            ]
            for rank in range(len(self.hosts))
        ]

    def describe(self) -> str:
        cmds = self.commands()
        relative = relative_user_paths(self.run_args)
        note = (f"\nrun from the folder that holds {', '.join(relative)} on every host (the "
                "workers read them relative to their working directory)" if relative else "")
        if self.launcher == "mpiexec":
            return (f"on {self.hosts[0]} (mpiexec reaches the other hosts itself):\n  "
                    f"{quote(cmds[0])}{note}")
        return "\n".join(f"on {host}:\n  {quote(cmd)}"
                         for host, cmd in zip(self.hosts, cmds)) + note

    def run_here(self, timeout: float | None) -> None:
        """All nodes are this machine: start every node's command and watch them as one run."""
        if self.netns:
            require_root_and_tools()
        job, threads = self.sharing_cores()
        # Also keeps torchrun from setting (and announcing) one thread per worker on its own.
        env = {**os.environ, LAUNCH_T0_VAR: repr(time.time()), "OMP_NUM_THREADS": str(threads)}
        tmp = run_dir()  # a run's kind of folder: one left by a killed launcher goes next time
        if self.launcher == "torchrun":
            # torchrun's per-rank log folders (its --log-dir), otherwise a new torchelastic_*
            # folder in the temp folder at every start, never removed.
            env.setdefault("PET_LOG_DIR", str(tmp / "torchrun"))
        try:
            workers = []
            for rank, cmd in enumerate(job.commands()):
                log = tmp / f"node{rank}.log"
                workers.append(
                    Worker(rank, start_process(cmd, env, log, show_stdout=rank == 0), log)
                )
            supervise(workers, timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


    def sharing_cores(self) -> tuple[MultiNode, int]:
        """This job with every node on this machine, and each worker's threads.

        A node's launcher counts only its own workers, so each would take this machine's cores
        divided by --nproc-per-node, however many nodes share them. The rule of `distbench run`
        is applied to all of them instead: cores // workers on this machine (given to the
        workers as --threads-per-worker unless the flags already say), and more threads than
        cores is one warning."""
        workers = len(self.hosts) * self.nproc_per_node
        cores = usable_cores()
        given = flag_value(self.run_args, "--threads-per-worker")
        threads = int(given) if given else max(1, cores // workers)
        if threads * workers > cores:
            warnings.warn(f"{workers} workers x {threads} thread(s) on {cores} core(s) of this "
                          "machine: oversubscribed, times will include the contention",
                          DistbenchWarning, stacklevel=2)
        run_args = self.run_args if given else [*self.run_args, "--threads-per-worker",
                                                 str(threads)]
        return replace(self, run_args=run_args), threads


def pick_port(hosts: list[str]) -> int:
    return free_port() if all(is_local(h) for h in hosts) else 29500


def rehearsal_possible(hosts: list[str]) -> bool:
    return all(is_local(h) for h in hosts)
