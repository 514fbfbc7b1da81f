"""`distbench bench-comm`: allreduce latency and bandwidth per backend and message size.

Command: distbench bench-comm --backends gloo,mpi --workers 2 --sizes 1KB:64MB
"""

from __future__ import annotations

import argparse
from pathlib import Path

from distbench.api.settings import split_list
from distbench.cli.parser import Subparsers
from distbench.core.errors import DistbenchError


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("bench-comm", help="allreduce micro-benchmark per backend and size")
    p.add_argument(
        "--backends",
        "--backend",
        default="gloo,mpi,nccl",
        help="comma list of gloo, mpi, nccl; unavailable ones are skipped with the "
        "reason (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=2, help="ranks (default: %(default)s)")
    p.add_argument(
        "--sizes",
        default="1KB:64MB",
        help="LOW:HIGH (powers of 2 from LOW) or a comma list; KB/MB are 1024-based "
        "(default: %(default)s)",
    )
    p.add_argument("--repeats", type=int, default=20, help="timed allreduces per size")
    p.add_argument("--warmup", type=int, default=5, help="untimed allreduces per size first")
    p.add_argument("--threads-per-worker", type=int, help="default: cores // workers")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per backend")
    p.add_argument("--dtype", default="float32",
                   help="element type on the wire: float32, or float16 / bfloat16 as "
                   "--compression fp16 / bf16 send it (mpi: no bfloat16) (default: %(default)s)")
    p.add_argument("--out", help="where to write (default: results/<UTC timestamp>/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Allreduce latency and bandwidth per size and backend, with real worker processes."""
    from distbench.comm.bench_comm import BenchSpec, print_bench_table, run_bench_comm
    from distbench.comm.cost_model import parse_sizes
    from distbench.results.records import check_out_dir, default_out_dir

    spec = BenchSpec(
        backends=split_list(args.backends),
        sizes=parse_sizes(args.sizes),
        workers=args.workers,
        repeats=args.repeats,
        warmup=args.warmup,
        threads_per_worker=args.threads_per_worker,
        timeout=args.timeout,
        dtype=args.dtype,
    )
    out = check_out_dir(args.out or default_out_dir())
    result = run_bench_comm(spec, out)
    print_bench_table(result)
    print(
        f"wrote {Path(out) / 'bench_comm.json'}"
        + (f", {Path(out) / 'bench_comm.png'}" if result["results"] else "")
    )
    if result["failed"]:  # measured what could be, and the reason for the rest, as one line
        raise DistbenchError("; ".join(f"{f['backend']} failed: {f['reason']}"
                                       for f in result["failed"]))
    return 0
