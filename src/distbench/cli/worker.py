"""`distbench worker`: one worker process, started by distbench's launcher or by an external one.

Command: torchrun --nproc-per-node 2 -m distbench worker --strategy ddp --dataset mnist-5k
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

from distbench.api.settings import check_config
from distbench.cli.flags import CONFIG_HELP, add_run_flags, config_of
from distbench.cli.parser import Subparsers
from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError, UsageError


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("worker", help="one worker process (for torchrun, mpiexec, srun)")
    add_run_flags(p)
    g = p.add_argument_group("cluster (default: detected from the launcher's environment)")
    g.add_argument("--config", help=CONFIG_HELP)
    g.add_argument("--rank", type=int)
    g.add_argument("--world-size", type=int)
    g.add_argument("--local-rank", type=int)
    g.add_argument("--master-addr")
    g.add_argument("--master-port", type=int)
    p.set_defaults(func=run)


def _fit_to_launch(cfg: RunConfig, world_size: int, rank: int, source: str) -> None:
    """The launcher decides the worker count: a one-process strategy refuses a larger world."""
    from distbench.strategies import check_workers, strategy_info

    if strategy_info(cfg.strategy).launcher.multi_process:
        cfg.workers = world_size
        return
    check_workers(cfg.strategy, cfg.workers)
    if world_size != 1:
        raise UsageError(
            f"strategy {cfg.strategy} runs in one process, but this worker is rank {rank} of "
            f"{world_size} ({source}); start it once, or use distbench run --strategy "
            f"{cfg.strategy}"
        )


# TensorFlow's autograph writes each function it converts to a module file in the temp folder,
# under this prefix, and deletes it from an atexit handler.
AUTOGRAPH_PREFIX = "__autograph_generated_file"


def remove_autograph_files() -> None:
    """Delete the module files autograph wrote for this process, and their cached bytecode (which
    autograph's own handler leaves): a process that ends by `os._exit` runs no atexit handler,
    and every TF worker would leave a few files in the temp folder (thousands after a few
    studies). Only files named by autograph's prefix, of modules named by it, whose folder is the
    temp folder (or its `__pycache__`) are touched, and a link is removed, never followed. The
    fork server converts nothing before it forks, so every such module is the worker's own."""
    import tempfile

    temp = Path(tempfile.gettempdir()).resolve()
    for name, module in list(sys.modules.items()):
        if not name.startswith(AUTOGRAPH_PREFIX):
            continue
        for path, folder in ((getattr(module, "__file__", None), temp),
                             (getattr(module, "__cached__", None), temp / "__pycache__")):
            with contextlib.suppress(OSError, ValueError, RuntimeError):  # gone, NUL, link loop
                if (isinstance(path, str) and Path(path).name.startswith(AUTOGRAPH_PREFIX)
                        and Path(path).parent.resolve() == folder):
                    os.unlink(path)


def temp_files_in(run_dir: str, strategy: str) -> None:
    """A TensorFlow worker started by distbench's launcher keeps its temp files (autograph's
    modules) in the launcher's private run folder, which the launcher removes however the worker
    ends: a worker killed mid-run (a crash, `--timeout`, a failed peer) cannot clean up, and each
    left four files in the temp folder. PyTorch workers keep the temp folder, where Inductor
    keeps its compile cache from run to run."""
    import tempfile

    from distbench.strategies import Framework, strategy_info

    if strategy_info(strategy).framework is Framework.TENSORFLOW:
        tempfile.tempdir = run_dir


def end_process() -> NoReturn:
    """Leave a worker whose record is written without the interpreter's shutdown.

    gloo's and DDP's C++ threads can outlive `destroy_process_group`, and destroying them while
    Python finalises aborts the process now and then (SIGABRT, "terminate called without an
    active exception"), which a launcher reports as a failed rank after a successful run. The
    work is done and the streams are flushed here, MPI is finalised where it was started, and
    the process ends at once, its autograph files removed first."""
    remove_autograph_files()
    sys.stdout.flush()
    sys.stderr.flush()
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.Finalize()
    os._exit(0)


# How the frameworks say an allocation failed: torch's CPU allocator, CUDA, TensorFlow.
OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "OOM when allocating")


def out_of_memory(exc: MemoryError | RuntimeError) -> BaseException:
    """An allocation that failed as one line saying what to shrink; any other error as it is."""
    text = str(exc)
    if not isinstance(exc, MemoryError) and not any(s in text for s in OUT_OF_MEMORY):
        return exc
    wanted = re.search(r"allocate (\d+) bytes", text)
    size = f" ({int(wanted[1]) / 2**30:,.1f} GiB at once)" if wanted else ""
    return DistbenchError(f"out of memory{size}: choose a smaller --batch-size, --image-size or "
                          "model")


def run(args: argparse.Namespace) -> int:
    """One worker process, started by distbench's launcher or by torchrun/mpiexec/srun."""
    from distbench.results.records import check_out_dir, default_out_dir
    from distbench.system.cluster import detect
    from distbench.system.files import write_whole
    from distbench.system.launchenv import HOST_PID_VAR, RUN_DIR_VAR
    from distbench.system.threads import apply_wait_defaults

    apply_wait_defaults()  # before torch loads libgomp
    cfg = config_of(args)
    if not args.config:
        check_config(cfg)  # the flags as typed, before the environment is read
    env = detect(rank=args.rank, world_size=args.world_size, local_rank=args.local_rank,
                 master_addr=args.master_addr, master_port=args.master_port)
    run_dir = os.environ.get(RUN_DIR_VAR)
    if run_dir:  # as early as the rank is known: a rank killed under mpiexec is named by it
        pid = os.environ.get(HOST_PID_VAR) or str(os.getpid())  # the PID mpiexec knows
        # Whole, for the launcher's watch (`launch/rankwatch.py`) reads it meanwhile.
        write_whole(Path(run_dir, f"rank{env.rank}.pid"), pid)
        temp_files_in(run_dir, cfg.strategy)
    from distbench.training.worker import print_summary, run_worker

    _fit_to_launch(cfg, env.world_size, env.rank, env.source)
    check_config(cfg)
    cfg.out = str(check_out_dir(cfg.out or default_out_dir()))
    try:
        try:
            record = run_worker(cfg, env)
        except (MemoryError, RuntimeError) as exc:
            raise out_of_memory(exc) from None
    except DistbenchError as exc:
        if env.world_size == 1:  # a one-process run has no other rank to tell it from
            raise
        error = DistbenchError(f"rank {env.rank}: {exc}")
        error.exit_code = exc.exit_code  # a refused input stays a usage error (exit 2)
        raise error from exc
    if record is not None and RUN_DIR_VAR not in os.environ:
        print_summary(record, cfg.out)
    end_process()
