"""The `distbench` command: one function per subcommand, flags grouped by concern.

Command: distbench --help

The CLI only parses, builds a `RunConfig` and calls the library. Anything the user can fix is
reported as one line and a non-zero exit (2 for bad input), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from distbench import __version__
from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.core.errors import (
    DistbenchError,
    DistbenchWarning,
    UsageError,
    error_line,
    unknown_name,
    warning_line,
)
from distbench.models import MODEL_NAMES


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: `distbench: error: ...`, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 1x28x28, got '{text}'")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def add_run_flags(p: argparse.ArgumentParser, matrix: bool = False) -> None:
    """The run flags; with `matrix` (compare), --strategies and --workers take comma lists."""
    d = RunConfig()
    g = p.add_argument_group("strategy and workers")
    if matrix:
        g.add_argument("--strategies", help="comma list (default: every available strategy)")
        g.add_argument(
            "--workers", default="1,2", help="comma list of worker counts (default: %(default)s)"
        )
    else:
        g.add_argument(
            "--strategy", default=d.strategy, help="training strategy (default: %(default)s)"
        )
        g.add_argument(
            "--workers", type=int, default=d.workers, help="worker processes or replicas"
        )
    g.add_argument("--threads-per-worker", type=int, help="default: cores // workers")
    g.add_argument(
        "--backend", help="torch.distributed backend (default: gloo on CPU, nccl on CUDA)"
    )
    g.add_argument("--device", default=d.device, help="cpu or cuda (default: %(default)s)")
    g.add_argument("--timeout", type=float, help="seconds before the whole run is stopped")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d.data.name, help="default: %(default)s")
    g.add_argument("--data-dir", help="folder holding the dataset (before $DISTBENCH_DATA, cache)")
    g.add_argument(
        "--allow-partial-data",
        action="store_true",
        help="train on the CIFAR-10 batches present, recorded as partial",
    )
    g.add_argument("--synthetic-samples", type=int, default=d.data.synthetic_samples)
    g.add_argument(
        "--synthetic-shape", type=_shape, default=d.data.synthetic_shape, metavar="CxHxW"
    )
    g.add_argument("--synthetic-classes", type=int, default=d.data.synthetic_classes)

    g = p.add_argument_group("model")
    g.add_argument("--model", default=d.model.name, help=f"one of {', '.join(MODEL_NAMES)}")
    g.add_argument("--pretrained", action="store_true", help="ImageNet weights (mobilenet_v2)")
    g.add_argument("--image-size", type=int, help="resize inputs (default: native size)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="global batch (strong scaling) or per-worker batch (weak)",
    )
    g.add_argument("--scaling", default=d.scaling, help="strong or weak (default: %(default)s)")
    g.add_argument("--optimizer", default=d.optimizer, help="adam or sgd (default: %(default)s)")
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--momentum", type=float, default=d.momentum, help="sgd momentum")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument(
        "--warmup-steps",
        type=int,
        default=d.warmup_steps,
        help="steps run and undone before the clock starts",
    )
    g.add_argument(
        "--calibration-steps",
        type=int,
        default=d.calibration_steps,
        help="steps with and without sync used to measure ddp's comm time",
    )
    g.add_argument("--target-accuracy", type=float, help="report time to reach this test accuracy")

    g = p.add_argument_group("strategy options")
    g.add_argument("--bucket-mb", type=float, default=d.bucket_mb, help="ddp/custom bucket size")
    g.add_argument("--overlap", action="store_true", help="custom: all_reduce during backward")
    g.add_argument(
        "--sync-every", type=int, help="param-avg: steps between averages (default: epoch)"
    )
    g.add_argument("--average-optimizer-state", action="store_true", help="param-avg")

    g = p.add_argument_group("tensorflow rows (tf-*)")
    g.add_argument(
        "--tf-shuffle-buffer",
        type=int,
        help="tf.data shuffle buffer (default: the PyTorch rows' per-epoch permutation)",
    )
    g.add_argument("--tf-prefetch", type=int, help="batches prefetched (default: AUTOTUNE; 0: off)")
    g.add_argument(
        "--tf-collective-timeout",
        type=float,
        default=d.tf_collective_timeout,
        help="tf-multiworker: seconds before a barrier fails (default: %(default)s)",
    )

    g = p.add_argument_group("output")
    g.add_argument("--out", help="results directory (default: results/<UTC timestamp>/)")
    if matrix:
        g.add_argument(
            "--save-model",
            choices=["best"],
            help="best: keep the checkpoint of the most accurate ok run in --out/best-model/",
        )
    else:
        g.add_argument("--save-model", action="store_true", help="keep a checkpoint in --out")
    g.add_argument("--no-progress", action="store_true", help="no live progress bar")


def config_from_args(args: argparse.Namespace, load_strategy: bool = True) -> RunConfig:
    """Build and validate the config, including every registry name.

    `load_strategy=False` checks the strategy name only, without importing its framework
    (compare plans many runs in a parent that must stay free of torch and TensorFlow).
    """
    from distbench.data import DATASETS
    from distbench.strategies import STRATEGIES, get_strategy

    cfg = RunConfig(
        strategy=args.strategy,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        backend=args.backend,
        device=args.device,
        timeout=args.timeout,
        data=DataConfig(
            args.dataset,
            args.data_dir,
            args.allow_partial_data,
            args.synthetic_samples,
            args.synthetic_shape,
            args.synthetic_classes,
        ),
        model=ModelConfig(args.model, args.pretrained, args.image_size, args.compile),
        epochs=args.epochs,
        batch_size=args.batch_size,
        scaling=args.scaling,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        seed=args.seed,
        warmup_steps=args.warmup_steps,
        calibration_steps=args.calibration_steps,
        target_accuracy=args.target_accuracy,
        bucket_mb=args.bucket_mb,
        overlap=args.overlap,
        sync_every=args.sync_every,
        average_optimizer_state=args.average_optimizer_state,
        out=args.out,
        tf_shuffle_buffer=args.tf_shuffle_buffer,
        tf_prefetch=args.tf_prefetch,
        tf_collective_timeout=args.tf_collective_timeout,
        save_model=args.save_model,
        progress=not args.no_progress,
    )
    cfg.validate()
    if cfg.data.name not in DATASETS:
        raise unknown_name("dataset", cfg.data.name, list(DATASETS))
    if cfg.model.name not in MODEL_NAMES:
        raise unknown_name("model", cfg.model.name, MODEL_NAMES)
    if load_strategy:
        get_strategy(cfg.strategy)
    elif cfg.strategy not in STRATEGIES:
        raise unknown_name("strategy", cfg.strategy, list(STRATEGIES))
    return cfg


# --------------------------------------------------------------------------- subcommands


def cmd_run(args: argparse.Namespace) -> int:
    """Train once with one strategy; the launcher starts and watches the workers."""
    # Validate first: bad input is reported before the launcher's imports (torch) are paid for.
    cfg = config_from_args(args)
    from distbench.launch.local import launch
    from distbench.results.records import default_out_dir
    from distbench.training.worker import print_summary

    cfg.out = cfg.out or default_out_dir()
    print_summary(launch(cfg), cfg.out)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """One worker process, started by distbench's launcher or by torchrun/mpiexec/srun."""
    from distbench.strategies import check_workers, strategy_info
    from distbench.system.cluster import detect
    from distbench.system.launchenv import RUN_DIR_VAR
    from distbench.training.worker import print_summary, run_worker

    if args.config:
        try:
            cfg = RunConfig.from_dict(json.loads(Path(args.config).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"--config {args.config}: not a readable RunConfig JSON file "
                             f"({type(exc).__name__}: {exc})") from None
    else:
        cfg = config_from_args(args)
    env = detect(
        rank=args.rank,
        world_size=args.world_size,
        local_rank=args.local_rank,
        master_addr=args.master_addr,
        master_port=args.master_port,
    )
    info = strategy_info(cfg.strategy)
    if not info.launcher.multi_process:
        check_workers(cfg.strategy, cfg.workers)
        if env.world_size != 1:
            raise UsageError(
                f"strategy {cfg.strategy} runs in one process, but this worker is rank "
                f"{env.rank} of {env.world_size} ({env.source}); start it once, or use "
                f"distbench run --strategy {cfg.strategy}"
            )
    else:
        cfg.workers = env.world_size
    cfg.validate()
    if cfg.out is None:
        from distbench.results.records import default_out_dir

        cfg.out = default_out_dir()
    try:
        record = run_worker(cfg, env)
    except DistbenchError as exc:
        raise DistbenchError(f"rank {env.rank}: {exc}") from None
    if record is not None and RUN_DIR_VAR not in os.environ:
        print_summary(record, cfg.out)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """Print the machine fingerprint stored with every result."""
    from distbench.system.fingerprint import fingerprint

    print(json.dumps(fingerprint(), indent=2))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Every strategy x worker count x repeat, each run in a fresh process, then the report."""
    from distbench.study.compare import run_compare

    return run_compare(args, defaults=vars(build_parser().parse_args(["compare"])))


def cmd_report(args: argparse.Namespace) -> int:
    """Tables, plots and report.html again, from the JSON records of one or more directories."""
    from distbench.report import build_report
    from distbench.report.tables import print_terminal
    from distbench.results.records import default_out_dir

    out = args.out or (args.dirs[0] if len(args.dirs) == 1 else default_out_dir())
    report = build_report(args.dirs, out)
    print_terminal(report.study)
    for skipped in report.skipped:
        print(f"skipped {skipped}")
    print("wrote " + ", ".join(str(p) for p in report.files))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Top-3 classes for each image file from a saved checkpoint."""
    from distbench.serving.predict import run_predict

    return run_predict(args.checkpoint, args.images, args.json, sys.stdout, sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    """A Gradio page for a checkpoint; local only unless --host / --share say otherwise."""
    from distbench.serving.serve import serve

    serve(args.checkpoint, host=args.host, port=args.port, share=args.share)
    return 0


def cmd_bench_comm(args: argparse.Namespace) -> int:
    """Allreduce latency and bandwidth per size and backend, with real worker processes."""
    from distbench.comm.bench_comm import BenchSpec, print_bench_table, run_bench_comm
    from distbench.comm.cost_model import parse_sizes
    from distbench.results.records import default_out_dir

    spec = BenchSpec(
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        sizes=parse_sizes(args.sizes),
        workers=args.workers,
        repeats=args.repeats,
        warmup=args.warmup,
        threads_per_worker=args.threads_per_worker,
        timeout=args.timeout,
    )
    out = args.out or default_out_dir()
    result = run_bench_comm(spec, out)
    print_bench_table(result)
    print(
        f"wrote {Path(out) / 'bench_comm.json'}"
        + (f", {Path(out) / 'bench_comm.png'}" if result["results"] else "")
    )
    return 0 if result["results"] and not result["failed"] else 1


def cmd_project(args: argparse.Namespace) -> int:
    """Step time, speedup and efficiency at more workers, from the alpha-beta allreduce model."""
    from distbench.comm.project import run_project

    print("wrote " + ", ".join(str(p) for p in run_project(args)))
    return 0


def add_checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        metavar="CKPT",
        help="model.safetensors / model.keras, its model.json, or their folder",
    )


def build_parser() -> Parser:
    parser = Parser(prog="distbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"distbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("run", help="train once with one strategy and record the result")
    add_run_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("worker", help="one worker process (for torchrun, mpiexec, srun)")
    add_run_flags(p)
    g = p.add_argument_group("cluster (default: detected from the launcher's environment)")
    g.add_argument("--config", help="a RunConfig JSON file instead of the run flags")
    g.add_argument("--rank", type=int)
    g.add_argument("--world-size", type=int)
    g.add_argument("--local-rank", type=int)
    g.add_argument("--master-addr")
    g.add_argument("--master-port", type=int)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("compare", help="run every strategy side by side and report")
    add_run_flags(p, matrix=True)
    g = p.add_argument_group("study")
    g.add_argument("--repeats", type=int, default=3, help="runs per cell (default: %(default)s)")
    g.add_argument("--resume", metavar="DIR", help="continue the study in DIR: run what is missing")
    g.add_argument(
        "--no-baseline",
        action="store_true",
        help="do not add single / tf-single when they are not listed",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="rebuild tables, plots and report.html from results dirs")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results directories to merge")
    p.add_argument("--out", help="where to write (default: DIR when one, else results/<time>/)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("predict", help="classify image files with a saved checkpoint")
    add_checkpoint_arg(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--json", action="store_true", help="print JSON instead of one line per image")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("serve", help="a Gradio page that classifies uploaded images")
    add_checkpoint_arg(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s, this machine only)",
    )
    p.add_argument("--port", type=int, default=7860, help="default: %(default)s")
    p.add_argument(
        "--share",
        action="store_true",
        help="also open a public gradio.live link (off unless given)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench-comm", help="allreduce micro-benchmark per backend and size")
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
    p.add_argument("--out", help="where to write (default: results/<UTC timestamp>/)")
    p.set_defaults(func=cmd_bench_comm)

    p = sub.add_parser("project", help="project step time and speedup to more workers")
    p.add_argument(
        "results_dir", nargs="?", metavar="RESULTS_DIR", help="a compare or run output (runs.jsonl)"
    )
    p.add_argument("--workers", default="8,64,512", help="worker counts (default: %(default)s)")
    g = p.add_argument_group("network (either --bandwidth and --latency, or --from-bench-comm)")
    g.add_argument("--bandwidth", help="link bandwidth, e.g. 25Gbit/s, 10Gbps, 3GB/s")
    g.add_argument("--latency", help="per-message latency, e.g. 5us, 0.2ms")
    g.add_argument(
        "--from-bench-comm",
        metavar="FILE",
        help="fit alpha and beta from a bench-comm JSON (or its directory)",
    )
    g.add_argument("--backend", help="which fitted backend to use (default: the run's own)")
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
    g.add_argument("--name", help="label for the typed-in workload")
    g = p.add_argument_group("model and output")
    g.add_argument("--strategies", help="only these strategies from RESULTS_DIR (comma list)")
    g.add_argument(
        "--backward-fraction",
        type=float,
        default=2 / 3,
        help="share of compute in backward, for the overlap schedule (default: 2/3)",
    )
    g.add_argument("--out", help="where to write projection.json/.png (default: RESULTS_DIR)")
    p.set_defaults(func=cmd_project)

    from distbench.cli.launch import add_launch_parser

    add_launch_parser(sub)

    p = sub.add_parser("env", help="print the machine fingerprint")
    p.set_defaults(func=cmd_env)
    return parser


_python_show_warning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """`DistbenchWarning`s as one line, like errors; any other warning as Python shows it."""
    if issubclass(category, DistbenchWarning):
        sys.stderr.write(warning_line(str(message)))
        sys.stderr.flush()
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    try:
        typed = list(sys.argv[1:] if argv is None else argv)
        # `distbench launch ... -- <run flags>`: what follows `--` is for the workers.
        cut = typed.index("--") if "--" in typed else len(typed)
        args = build_parser().parse_args(typed[:cut])
        args.run_args = typed[cut + 1 :]
        args.argv = typed  # the command as typed
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except DistbenchError as exc:
        # One write, so lines from several ranks sharing a stream never interleave mid-line.
        sys.stderr.write(error_line(str(exc)))
        sys.stderr.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        print("distbench: interrupted", file=sys.stderr)
        return 130
