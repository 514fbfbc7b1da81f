"""`distbench project`: step time, speedup and efficiency at more workers, from the α-β model.

Command: distbench project RESULTS_DIR --workers 8,64,512 --bandwidth 25Gbit/s --latency 5us
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from distbench.api.settings import parse_counts, split_list
from distbench.cli.parser import Subparsers
from distbench.core.errors import UsageError

if TYPE_CHECKING:
    from distbench.comm.cost_model import Link
    from distbench.comm.project import ProjectRequest, Workload


def _add_network_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network (either --bandwidth and --latency, or --from-bench-comm)")
    g.add_argument("--bandwidth", help="link bandwidth, e.g. 25Gbit/s, 10Gbps, 3GB/s")
    g.add_argument("--latency", help="per-message latency, e.g. 5us, 0.2ms")
    g.add_argument(
        "--from-bench-comm",
        metavar="FILE",
        help="fit alpha and beta from a bench-comm JSON (or its directory)",
    )
    g.add_argument("--backend", help="which fitted backend to use (default: the run's own)")


def _add_typed_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inputs typed in instead of RESULTS_DIR")
    g.add_argument("--compute-s", type=float, help="compute seconds per step per worker")
    g.add_argument("--grad-bytes", help="gradient size, e.g. 97.7MB (parameters x 4 bytes)")
    g.add_argument(
        "--measured-workers",
        type=int,
        default=1,
        help="workers at which --compute-s holds (default: %(default)s)",
    )
    g.add_argument("--scaling", default="strong", help="strong or weak (default: %(default)s)")
    g.add_argument("--overlap", action="store_true", help="the strategy overlaps comm")
    g.add_argument("--compression", default="none",
                   help="none, fp16 or bf16: the gradient travels in 2-byte elements, G/2 "
                   "(PowerSGD's bytes depend on the layer shapes: project it from measured "
                   "runs) (default: %(default)s)")
    g.add_argument("--name", help="label for the typed-in workload")


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("project", help="project step time and speedup to more workers")
    p.add_argument(
        "results_dir", nargs="?", metavar="RESULTS_DIR", help="a compare or run output (runs.jsonl)"
    )
    p.add_argument("--workers", default="8,64,512", help="worker counts (default: %(default)s)")
    _add_network_flags(p)
    _add_typed_flags(p)
    g = p.add_argument_group("model and output")
    g.add_argument("--strategies", help="only these strategies from RESULTS_DIR (comma list)")
    g.add_argument(
        "--backward-fraction",
        type=float,
        default=2 / 3,
        help="share of compute in backward, for the overlap schedule (default: 2/3)",
    )
    g.add_argument("--out", help="where to write projection.json/.png (default: RESULTS_DIR)")
    g.add_argument("--details", action="store_true",
                   help="also one table per measured cell, with both schedules")
    p.set_defaults(func=run)


def _network(args: argparse.Namespace) -> Link | Path:
    from distbench.comm.cost_model import Link, parse_bandwidth, parse_latency

    if args.from_bench_comm:
        if args.bandwidth or args.latency:
            raise UsageError("give either --from-bench-comm or --bandwidth/--latency, not both")
        return Path(args.from_bench_comm)
    if not (args.bandwidth and args.latency):
        raise UsageError("give --bandwidth and --latency (e.g. 25Gbit/s and 5us), "
                         "or --from-bench-comm FILE")
    return Link(parse_latency(args.latency), parse_bandwidth(args.bandwidth),
                f"given: {args.bandwidth}, {args.latency}")


def _inputs(args: argparse.Namespace) -> Workload | Path:
    from distbench.comm.cost_model import parse_size
    from distbench.comm.project import Workload

    typed = args.compute_s is not None or args.grad_bytes is not None
    if args.results_dir and typed:
        raise UsageError("give RESULTS_DIR or --compute-s/--grad-bytes, not both")
    if not typed:
        if not args.results_dir:
            raise UsageError("give RESULTS_DIR (a compare or run output) or "
                             "--compute-s/--grad-bytes")
        return Path(args.results_dir)
    if args.compute_s is None or args.grad_bytes is None or not 0 < args.compute_s < math.inf:
        raise UsageError("typed-in inputs need both --compute-s (a finite number > 0) and "
                         "--grad-bytes")
    if args.scaling not in ("strong", "weak"):
        raise UsageError(f"--scaling must be strong or weak, got {args.scaling}")
    if args.compression not in ("none", "fp16", "bf16"):
        raise UsageError(f"--compression must be none, fp16 or bf16 for typed-in inputs, got "
                         f"{args.compression} (PowerSGD: project the measured runs instead)")
    grad_bytes = parse_size(args.grad_bytes)
    if grad_bytes < 1 or args.measured_workers < 1:
        raise UsageError(f"--grad-bytes must be at least 1 byte and --measured-workers >= 1, got "
                         f"{args.grad_bytes} and {args.measured_workers}")
    return Workload(args.name or "typed-in workload", args.measured_workers, args.compute_s,
                    grad_bytes, args.scaling, overlaps=args.overlap,
                    wire_bytes=None if args.compression == "none" else [grad_bytes // 2])


def request_from_args(args: argparse.Namespace) -> ProjectRequest:
    from distbench.comm.project import ProjectRequest

    return ProjectRequest(
        workers=parse_counts("--workers", args.workers), network=_network(args),
        inputs=_inputs(args), backend=args.backend,
        strategies=split_list(args.strategies) if args.strategies else None,
        backward_fraction=args.backward_fraction, out=Path(args.out) if args.out else None,
        details=args.details)


def run(args: argparse.Namespace) -> int:
    """Step time, speedup and efficiency at more workers, from the alpha-beta allreduce model."""
    from distbench.comm.project import run_project

    print("wrote " + ", ".join(str(p) for p in run_project(request_from_args(args))))
    return 0
