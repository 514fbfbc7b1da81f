"""What every worker process runs, whoever started it (distbench, torchrun, mpiexec, srun).

Command: torchrun --nproc-per-node 2 -m distbench worker --strategy ddp --dataset mnist-5k

Rank 0 alone prints the summary and appends the record; a failure raises, and the launcher (or the
external one) reports it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from distbench.core.config import RunConfig
from distbench.data import Dataset, load_dataset
from distbench.results.records import append_record, make_record, utc_now
from distbench.strategies import Framework, get_strategy
from distbench.system.cluster import ClusterEnv
from distbench.system.launchenv import DATA_KEY_VAR, LAUNCH_T0_VAR, WORKER_START_VAR
from distbench.system.threads import one_process_threads, usable_cores
from distbench.system.timing import clock


def make_trainer(cfg: RunConfig, strategy: Any, data: Dataset) -> Any:
    """The framework's trainer: an object whose `run()` trains and measures, and whose
    `save_checkpoint(record)` keeps the model. Only that framework is imported."""
    if strategy.info.framework is Framework.TENSORFLOW:
        from distbench.training.keras_trainer import KerasTrainer

        return KerasTrainer(cfg, strategy, data)
    from distbench.training.torch_trainer import Trainer

    return Trainer(cfg, strategy, data)


# Every trainer a process built, never freed: a process's end (`cli.worker.end_process`) drops
# them. Freeing a DDP model frees its Reducer, whose reference to its gloo process group may be
# the last one after `destroy_process_group`; the group's destructor then joins gloo's run-loop
# thread while holding the GIL, and that thread, freeing a finished collective's Python objects,
# waits for the GIL: the worker hung for good (seen at the end of a ddp x2 run, after its record).
_KEPT: list[Any] = []


def run_worker(cfg: RunConfig, env: ClusterEnv) -> dict[str, Any] | None:
    """Train once; returns the record on rank 0, None elsewhere."""
    started_at = utc_now()
    launch_t0 = float(os.environ.get(LAUNCH_T0_VAR, time.time()))
    strategy = get_strategy(cfg.strategy)(cfg, env)
    # The baseline gets every idle core (system.threads); each of N workers on a node gets
    # cores // N (at least 1).
    threads_note = None
    if not cfg.threads_per_worker and env.world_size == 1:
        cfg.threads_per_worker, threads_note = one_process_threads()
    cfg.threads_per_worker = cfg.threads_per_worker or max(
        1, usable_cores() // env.local_world_size)
    strategy.setup()
    try:
        startup_s = time.time() - launch_t0
        t = clock()
        data = load_dataset(cfg.data, cfg.model.image_size, os.environ.get(DATA_KEY_VAR))
        data_s = clock() - t
        trainer = make_trainer(cfg, strategy, data)
        _KEPT.append(trainer)
        measured = trainer.run()
        timings = strategy.all_gather((startup_s, data_s))
        if cfg.save_model:
            trainer.gather_weights()
        record = None
        if env.is_chief:
            measured.update(
                startup_s=max(v[0] for v in timings), data_s=max(v[1] for v in timings),
                backend=strategy.backend, cluster_source=env.source, data_note=data.note,
                threads_note=threads_note,
                data_source=data.source,
                worker_start=os.environ.get(WORKER_START_VAR, "exec"),
            )
            record = make_record(cfg, measured=measured, started_at=started_at)
            if cfg.save_model:
                record["checkpoint"] = str(trainer.save_checkpoint(record))
            append_record(cfg.out or ".", record)
        # Leave together, after rank 0 has written, not while it still uses the process group:
        # a rank tearing down early can abort in gloo's exit path.
        strategy.barrier()
        return record
    finally:
        strategy.teardown()


def print_summary(record: dict[str, Any], out: str | Path) -> None:
    console = Console(soft_wrap=True, emoji=False)  # a spec like `net.py:build:` is no emoji
    comm = record["comm_fraction"]
    console.print(
        f"[bold]{record['strategy']}[/bold] x{record['workers']}, {escape(record['model'])} on "
        f"{escape(record['dataset'])}: train {record['train_s']:.2f} s, "
        f"{record['samples_per_s']:,.0f} samples/s, test accuracy {record['test_accuracy']:.2%}"
        + (f", comm {comm:.1%}" if comm else "")
    )
    for note in (record.get("data_note"), record.get("compile_note"), record.get("threads_note")):
        if note:
            console.print(f"note: {note}")
    console.print(f"record appended to {Path(out) / 'runs.jsonl'}")
    if record.get("checkpoint"):
        console.print(f"model saved to {record['checkpoint']} (and its model.json beside it)")
