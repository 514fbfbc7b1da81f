"""`distbench launch slurm|compose|torchrun|mpiexec|tf-config`: the engines' flags and handlers.

Command: distbench launch slurm --nodes 1 --tasks-per-node 2 --strategy ddp --submit --wait \
           -- --dataset mnist-5k --epochs 1

Everything after `--` is handed to `distbench worker` on every node; it is checked here with the
run flags first (`cli.flags`), so a typo fails now rather than on the cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from distbench.cli.flags import check_run_argv
from distbench.cli.parser import Subparsers
from distbench.core.errors import UsageError


def _check_run_args(strategy: str, run_args: list[str]) -> None:
    check_run_argv(["--strategy", strategy, *run_args])


def _slurm(args: argparse.Namespace) -> int:
    from distbench.launch.slurm import SlurmJob, cluster_partitions, sbatch_script, submit
    from distbench.results.records import check_out_dir
    from distbench.system.files import umask_mode

    job = SlurmJob(args.strategy, args.run_args, args.nodes, args.tasks_per_node,
                   args.gpus_per_node, args.cpus_per_task, args.time, args.partition,
                   args.account, args.job_name, args.mpi_launcher, args.port,
                   args.python or sys.executable)
    job.validate(cluster_partitions() if args.partition else None)
    _check_run_args(args.strategy, args.run_args)
    script = Path(args.script or f"distbench-{args.strategy}.sbatch")
    if script.is_dir():
        raise UsageError(f"--script {script}: a folder; give the script's file name")
    check_out_dir(script.parent, "--script")
    script.write_text(sbatch_script(job))
    script.chmod(umask_mode(executable=True))  # executable, as far as the umask allows
    print(f"wrote {script}")
    if args.submit or args.wait:
        job_id = submit(str(script), wait=args.wait)
        print(f"job {job_id} {'finished' if args.wait else 'submitted'}; results in "
              f"results/slurm-{job_id}/ (log slurm-{job_id}.out)")
    return 0


def _compose(args: argparse.Namespace) -> int:
    from distbench.launch.compose import ComposeJob, write_compose

    job = ComposeJob(args.strategy, args.workers, args.run_args)
    job.validate()
    _check_run_args(args.strategy, args.run_args)
    for path in write_compose(job, Path(args.dir or f"compose-{args.strategy}")):
        print(f"wrote {path}")
    return 0


def _multinode(args: argparse.Namespace) -> int:
    from distbench.launch.multinode import MultiNode, pick_port, read_hostfile, rehearsal_possible

    if args.nodes < 1:
        raise UsageError(f"--nodes must be >= 1, got {args.nodes}")
    hosts = read_hostfile(args.hostfile, args.nodes)
    job = MultiNode(args.launcher, args.strategy, hosts, args.nproc_per_node, args.run_args,
                    args.port or pick_port(hosts), args.python or sys.executable,
                    os.path.abspath(args.hostfile), netns=args.netns)
    job.validate()
    _check_run_args(args.strategy, args.run_args)
    print(job.describe())
    if (args.netns or rehearsal_possible(hosts)) and not args.print_only:
        print("every host is a namespace of `distbench cluster up`: starting them there"
              if args.netns else "every host is this machine: starting them here")
        job.run_here(args.timeout)
    return 0


def _tf_config(args: argparse.Namespace) -> int:
    from distbench.launch.slurm import tf_config_from_slurm

    print(tf_config_from_slurm(os.environ, args.tasks_per_node))
    return 0


def add_parser(subparsers: Subparsers) -> None:
    """Register `launch` and its engines on the top-level subparsers."""
    launch = subparsers.add_parser(
        "launch", help="run on Slurm, Docker Compose, or several nodes",
        description="Flags after `--` go to `distbench worker` on every node.")
    launch.set_defaults(func=run, run_args=[])  # filled with what follows `--`
    engines = launch.add_subparsers(dest="engine", required=True, parser_class=type(launch))

    p = engines.add_parser("slurm", help="write (and --submit) an sbatch script")
    p.add_argument("--strategy", required=True)
    g = p.add_argument_group("allocation")
    g.add_argument("--nodes", type=int, default=1)
    g.add_argument("--tasks-per-node", type=int, default=1, help="workers per node")
    g.add_argument("--gpus-per-node", type=int)
    g.add_argument("--cpus-per-task", type=int)
    g.add_argument("--time", help="wall-clock limit, e.g. 01:00:00")
    g.add_argument("--partition")
    g.add_argument("--account")
    g.add_argument("--job-name")
    g = p.add_argument_group("launch")
    g.add_argument("--mpi-launcher", default="srun", help="mpi only: srun (--mpi=pmix) or mpiexec")
    g.add_argument("--port", type=int, default=29500, help="torchrun rendezvous port")
    g.add_argument("--python", help="interpreter on the nodes (default: this one)")
    g.add_argument("--script", help="where to write it (default: distbench-<strategy>.sbatch)")
    g.add_argument("--submit", action="store_true", help="sbatch it and print the job id")
    g.add_argument("--wait", action="store_true", help="submit and wait for the job to end")
    p.set_defaults(engine_run=_slurm)

    p = engines.add_parser("compose", help="write a Dockerfile and docker-compose.yml")
    p.add_argument("--strategy", required=True)
    p.add_argument("--workers", type=int, default=2, help="containers, one worker each")
    p.add_argument("--dir", help="output folder (default: compose-<strategy>)")
    p.set_defaults(engine_run=_compose)

    for name in ("torchrun", "mpiexec"):
        p = engines.add_parser(name, help=f"{name} across the hosts of a hostfile")
        p.add_argument("--strategy", required=True)
        p.add_argument("--nodes", type=int, required=True)
        p.add_argument("--hostfile", required=True, help="one host per line; the first is rank 0")
        p.add_argument("--nproc-per-node", type=int, default=1)
        p.add_argument("--port", type=int, help="rendezvous port (default: 29500, free if local)")
        p.add_argument("--python", help="interpreter on the nodes (default: this one)")
        p.add_argument("--print-only", action="store_true", help="never start, only print")
        p.add_argument("--timeout", type=float, help="seconds before a local rehearsal is stopped")
        p.add_argument("--netns", action="store_true",
                       help="the hosts are nodes of `distbench cluster up`: start each node's "
                       "processes inside its network namespace")
        p.set_defaults(engine_run=_multinode, launcher=name)

    p = engines.add_parser("tf-config", help="print this Slurm task's TF_CONFIG (used by scripts)")
    p.add_argument("--tasks-per-node", type=int, default=1)
    p.set_defaults(engine_run=_tf_config)


def run(args: argparse.Namespace) -> int:
    """The chosen engine: write a script or a compose file, or start the nodes."""
    engine: Callable[[argparse.Namespace], int] = args.engine_run
    return engine(args)
