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
from collections.abc import Callable, Sequence
from pathlib import Path

from distbench import __version__
from distbench.config import DataConfig, ModelConfig, RunConfig
from distbench.errors import DistbenchError, UsageError, unknown_name
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


def add_run_flags(p: argparse.ArgumentParser) -> None:
    d = RunConfig()
    g = p.add_argument_group("strategy and workers")
    g.add_argument("--strategy", default=d.strategy, help="training strategy (default: %(default)s)")
    g.add_argument("--workers", type=int, default=d.workers, help="worker processes or replicas")
    g.add_argument("--threads-per-worker", type=int, help="default: cores // workers")
    g.add_argument("--backend", help="torch.distributed backend (default: gloo on CPU, nccl on CUDA)")
    g.add_argument("--device", default=d.device, help="cpu or cuda (default: %(default)s)")
    g.add_argument("--timeout", type=float, help="seconds before the whole run is stopped")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d.data.name, help="default: %(default)s")
    g.add_argument("--data-dir", help="folder holding the dataset (before $DISTBENCH_DATA, cache)")
    g.add_argument("--allow-partial-data", action="store_true",
                   help="train on the CIFAR-10 batches present, recorded as partial")
    g.add_argument("--synthetic-samples", type=int, default=d.data.synthetic_samples)
    g.add_argument("--synthetic-shape", type=_shape, default=d.data.synthetic_shape,
                   metavar="CxHxW")
    g.add_argument("--synthetic-classes", type=int, default=d.data.synthetic_classes)

    g = p.add_argument_group("model")
    g.add_argument("--model", default=d.model.name, help=f"one of {', '.join(MODEL_NAMES)}")
    g.add_argument("--pretrained", action="store_true", help="ImageNet weights (mobilenet_v2)")
    g.add_argument("--image-size", type=int, help="resize inputs (default: native size)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="global batch (strong scaling) or per-worker batch (weak)")
    g.add_argument("--scaling", default=d.scaling, help="strong or weak (default: %(default)s)")
    g.add_argument("--optimizer", default=d.optimizer, help="adam or sgd (default: %(default)s)")
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--momentum", type=float, default=d.momentum, help="sgd momentum")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--warmup-steps", type=int, default=d.warmup_steps,
                   help="steps run and undone before the clock starts")
    g.add_argument("--calibration-steps", type=int, default=d.calibration_steps,
                   help="steps with and without sync used to measure ddp's comm time")
    g.add_argument("--target-accuracy", type=float, help="report time to reach this test accuracy")

    g = p.add_argument_group("strategy options")
    g.add_argument("--bucket-mb", type=float, default=d.bucket_mb, help="ddp/custom bucket size")
    g.add_argument("--overlap", action="store_true", help="custom: all_reduce during backward")
    g.add_argument("--sync-every", type=int, help="param-avg: steps between averages (default: epoch)")
    g.add_argument("--average-optimizer-state", action="store_true", help="param-avg")

    g = p.add_argument_group("output")
    g.add_argument("--out", help="results directory (default: results/<UTC timestamp>/)")
    g.add_argument("--save-model", action="store_true", help="keep a checkpoint in --out")
    g.add_argument("--no-progress", action="store_true", help="no live progress bar")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Build and validate the config, including every registry name."""
    from distbench.data import DATASETS
    from distbench.strategies import get_strategy

    cfg = RunConfig(
        strategy=args.strategy, workers=args.workers, threads_per_worker=args.threads_per_worker,
        backend=args.backend, device=args.device, timeout=args.timeout,
        data=DataConfig(args.dataset, args.data_dir, args.allow_partial_data,
                        args.synthetic_samples, args.synthetic_shape, args.synthetic_classes),
        model=ModelConfig(args.model, args.pretrained, args.image_size, args.compile),
        epochs=args.epochs, batch_size=args.batch_size, scaling=args.scaling,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, seed=args.seed, warmup_steps=args.warmup_steps,
        calibration_steps=args.calibration_steps, target_accuracy=args.target_accuracy,
        bucket_mb=args.bucket_mb, overlap=args.overlap, sync_every=args.sync_every,
        average_optimizer_state=args.average_optimizer_state, out=args.out,
        save_model=args.save_model, progress=not args.no_progress,
    )
    cfg.validate()
    if cfg.data.name not in DATASETS:
        raise unknown_name("dataset", cfg.data.name, list(DATASETS))
    if cfg.model.name not in MODEL_NAMES:
        raise unknown_name("model", cfg.model.name, MODEL_NAMES)
    get_strategy(cfg.strategy)
    return cfg


# --------------------------------------------------------------------------- subcommands


def cmd_run(args: argparse.Namespace) -> int:
    """Train once with one strategy; the launcher starts and watches the workers."""
    from distbench.launch.local import launch
    from distbench.results import default_out_dir

    from distbench.worker import print_summary

    cfg = config_from_args(args)
    cfg.out = cfg.out or default_out_dir()
    print_summary(launch(cfg), cfg.out)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """One worker process, started by distbench's launcher or by torchrun/mpiexec/srun."""
    from distbench.cluster import detect
    from distbench.worker import RUN_DIR_VAR, print_summary, run_worker

    if args.config:
        cfg = RunConfig.from_dict(json.loads(Path(args.config).read_text()))
    else:
        cfg = config_from_args(args)
    env = detect(rank=args.rank, world_size=args.world_size, local_rank=args.local_rank,
                 master_addr=args.master_addr, master_port=args.master_port)
    cfg.workers = env.world_size
    cfg.validate()
    if cfg.out is None:
        from distbench.results import default_out_dir

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
    from distbench.fingerprint import fingerprint

    print(json.dumps(fingerprint(), indent=2))
    return 0


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

    p = sub.add_parser("env", help="print the machine fingerprint")
    p.set_defaults(func=cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except DistbenchError as exc:
        # One write, so lines from several ranks sharing a stream never interleave mid-line.
        sys.stderr.write(f"distbench: error: {exc}\n")
        sys.stderr.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        print("distbench: interrupted", file=sys.stderr)
        return 130
