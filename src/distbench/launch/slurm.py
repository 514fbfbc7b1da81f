"""Write (and optionally submit) an sbatch script that runs one strategy across a Slurm allocation.

Command: distbench launch slurm --nodes 4 --tasks-per-node 8 --gpus-per-node 8 --time 01:00:00 \
           --partition P --account A --strategy ddp -- --dataset mnist --epochs 5

How a strategy starts inside the allocation follows its registry launcher kind:
  spawn (ddp, custom, ...)  one `srun` task per node runs torchrun with a c10d rendezvous on the
                            first node; torchrun starts --tasks-per-node workers there
  mpiexec (mpi)             `srun --mpi=pmix` (or `mpiexec` inside the allocation) starts every rank
  tf-config                 `srun` starts every task; each builds its TF_CONFIG from the node list
                            and its SLURM_PROCID (`distbench launch tf-config`)
  one-process               one `srun` task running `distbench run`
All tasks write to one results directory (default results/slurm-<job id>), rank 0 alone appending.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from distbench.core.errors import DistbenchError, UsageError
from distbench.launch.scripts import has_flag, quote, relative_user_paths, worker_args
from distbench.strategies import Launcher, strategy_info
from distbench.system.cluster import expand_slurm_nodelist, whole_number

# Both are matched whole (`fullmatch`: a `$` would let a trailing newline through, and with it a
# line of the user's own into the script).
TIME_FORMAT = re.compile(r"(\d+-)?\d{1,3}(:\d{2}){0,2}", re.ASCII)
# #SBATCH lines are read by sbatch, not a shell: values are restricted to characters that need
# no quoting there instead of being quoted.
SBATCH_VALUE = re.compile(r"[\w.,:@+-]+", re.ASCII)
TF_PORT_BASE = 23456


@dataclass
class SlurmJob:
    strategy: str
    run_args: list[str] = field(default_factory=list)
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    time: str | None = None
    partition: str | None = None
    account: str | None = None
    job_name: str | None = None
    mpi_launcher: str = "srun"  # srun | mpiexec
    rdzv_port: int = 29500
    python: str = "python3"

    def validate(self, known_partitions: Sequence[str] | None = None) -> None:
        info = strategy_info(self.strategy)
        if self.nodes < 1:
            raise UsageError(f"--nodes must be >= 1, got {self.nodes}")
        if self.tasks_per_node < 1:
            raise UsageError(f"--tasks-per-node must be >= 1, got {self.tasks_per_node}")
        for flag, count in (("--gpus-per-node", self.gpus_per_node),
                            ("--cpus-per-task", self.cpus_per_task)):
            if count is not None and count < 1:
                raise UsageError(f"{flag} must be >= 1, got {count}")
        if not 1 <= self.rdzv_port <= 65535:
            raise UsageError(f"--port must be in [1, 65535], got {self.rdzv_port}")
        if self.time is not None and not TIME_FORMAT.fullmatch(self.time):
            raise UsageError(f"--time must look like 01:00:00 or 1-00:00:00, got {self.time!r}")
        for flag, value in (
            ("--partition", self.partition),
            ("--account", self.account),
            ("--job-name", self.job_name),
        ):
            if value is not None and not SBATCH_VALUE.fullmatch(value):
                raise UsageError(
                    f"{flag} {value!r} may only hold letters, digits and . , : @ + - _"
                )
        if self.mpi_launcher not in ("srun", "mpiexec"):
            raise UsageError(f"--mpi-launcher must be srun or mpiexec, got {self.mpi_launcher!r}")
        if (
            known_partitions is not None
            and self.partition
            and self.partition not in known_partitions
        ):
            raise UsageError(
                f"unknown partition '{self.partition}'; this cluster has: "
                f"{', '.join(known_partitions)}"
            )
        if not info.launcher.multi_process and self.nodes * self.tasks_per_node != 1:
            raise UsageError(
                f"strategy {self.strategy} runs in one process; use --nodes 1 --tasks-per-node 1"
            )


def sbatch_script(job: SlurmJob) -> str:
    """The whole script; `bash -n` clean."""
    name = job.job_name or f"distbench-{job.strategy}"
    header = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --nodes={job.nodes}",
        f"#SBATCH --ntasks-per-node={job.tasks_per_node}",
        "#SBATCH --output=slurm-%j.out",
    ]
    for flag, value in (
        ("gpus-per-node", job.gpus_per_node),
        ("cpus-per-task", job.cpus_per_task),
        ("time", job.time),
        ("partition", job.partition),
        ("account", job.account),
    ):
        if value is not None:
            header.append(f"#SBATCH --{flag}={value}")
    run_args = list(job.run_args)
    out = "" if has_flag(run_args, "--out") else ' --out "results/slurm-${SLURM_JOB_ID}"'
    checks = [
        f"[ -e {shlex.quote(path)} ] || {{ printf 'distbench: error: %s not found from %s; "
        f"submit from the folder it is relative to\\n' {shlex.quote(path)} \"$(pwd)\" >&2; "
        "exit 2; }"
        for path in relative_user_paths(run_args)
    ]
    if checks:
        checks.insert(0, "# Relative paths in the flags are read from the job's working "
                         "directory (where sbatch runs): check them before any task starts.")
    body = [
        "set -euo pipefail",
        *checks,
        # sed reads every host name: `head -n 1` would leave scontrol writing into a closed pipe
        # on a long node list, and its SIGPIPE (exit 141) ends the job under pipefail.
        'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)',
        f'echo "distbench: {job.strategy} on $SLURM_JOB_NUM_NODES node(s), job $SLURM_JOB_ID"',
        launch_line(job, run_args) + out,
    ]
    return "\n".join(header + [""] + body) + "\n"


def launch_line(job: SlurmJob, run_args: list[str]) -> str:
    py, s, k = quote([job.python]), job.strategy, job.tasks_per_node
    worker = quote(worker_args(s, run_args))
    how = strategy_info(s).launcher
    if how is Launcher.SPAWN:
        return (
            # One task per node stands for the node's K workers: it needs all their CPUs, or
            # CPU binding (task/affinity, task/cgroup) would put every worker on one.
            f"srun --nodes={job.nodes} --ntasks={job.nodes} --ntasks-per-node=1 "
            f"--cpus-per-task={k * (job.cpus_per_task or 1)} {py} "
            "-m torch.distributed.run "
            f"--nnodes={job.nodes} --nproc-per-node={k} --rdzv-backend=c10d "
            f'--rdzv-endpoint="$head_node:{job.rdzv_port}" --rdzv-id="$SLURM_JOB_ID" ' + worker
        )
    # srun does not inherit #SBATCH --cpus-per-task (Slurm >= 22.05): say it on every step.
    cpus = f" --cpus-per-task={job.cpus_per_task}" if job.cpus_per_task else ""
    if how is Launcher.MPIEXEC and job.mpi_launcher == "mpiexec":
        return f'mpiexec -n "$SLURM_NTASKS" -ppn {k} {py} {worker}'
    if how is Launcher.MPIEXEC:
        return f"srun --mpi=pmix{cpus} {py} {worker}"
    if how is Launcher.TF_CONFIG:
        tf_config = f"{py} -m distbench launch tf-config --tasks-per-node {k}"
        # The output flag comes last on the line, so the inner command takes "$@".
        inner = f'export TF_CONFIG=$({tf_config}); exec {py} {worker} "$@"'
        return f"srun{cpus} bash -c {quote([inner])} _"
    run = quote(["-m", "distbench", "run", "--strategy", s, *run_args])
    return f"srun --ntasks=1{cpus} {py} {run}"


def tf_config_from_slurm(env: Mapping[str, str], tasks_per_node: int) -> str:
    """TF_CONFIG for this task: every task of the job as a worker, indexed by SLURM_PROCID."""
    try:
        hosts = expand_slurm_nodelist(env["SLURM_JOB_NODELIST"])
        procid = env["SLURM_PROCID"]
    except KeyError as exc:
        raise DistbenchError(f"not inside a Slurm job step: {exc.args[0]} is not set") from None
    workers = [f"{h}:{TF_PORT_BASE + i}" for h in hosts for i in range(tasks_per_node)]
    index = whole_number("SLURM_PROCID", procid, 0, len(workers) - 1)
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def cluster_partitions() -> list[str] | None:
    """Partitions of the cluster this machine submits to, or None where sinfo is unavailable."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted(set(out.stdout.split())) if out.returncode == 0 else None


def submit(script: str, wait: bool = False) -> str:
    """`sbatch [--wait] SCRIPT`; returns the job id."""
    cmd = ["sbatch", "--parsable", *(["--wait"] if wait else []), script]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
    except OSError:
        raise DistbenchError(
            "sbatch not found: submit from a Slurm login node, or run the script "
            f"with sbatch yourself: {script}"
        ) from None
    if out.returncode != 0 and not out.stdout.strip():
        raise DistbenchError(f"sbatch failed: {out.stderr.strip().splitlines()[-1:]}")
    job_id = out.stdout.strip().split(";")[0]
    if out.returncode != 0:
        raise DistbenchError(f"job {job_id} failed (see slurm-{job_id}.out)")
    return job_id
