"""Allreduce micro-benchmark: latency and bandwidth per message size, one line per backend.

Command: distbench bench-comm --backends gloo,mpi --workers 2 --sizes 1KB:64MB

Each backend gets its own real worker processes, started and watched by distbench's launcher
(`distbench.launch.local`): gloo and nccl ranks are N processes that meet over
MASTER_ADDR/MASTER_PORT (torch.distributed), mpi ranks run under `mpiexec -n N` (mpi4py). Every
rank runs the same loop for each size: `--warmup` allreduces that are not timed, then `--repeats`
timed ones, each started after a barrier, of a buffer of zeros (float32, or the `--dtype` that a
compressed run sends: float16 or bfloat16, so that sizes are the bytes on the wire). Zeros never
overflow and never turn denormal, so every repeat does the same work. An iteration's latency is the
mean of the ranks' own times (the OSU micro-benchmarks' convention); the report gives the median
and IQR over iterations, the algorithm bandwidth bytes / median time, and the bus bandwidth under
the nccl-tests definition busbw = algbw · 2(n-1)/n. The mean is stored too: a training run pays the
sum of its allreduces, so `distbench project --from-bench-comm` fits the mean, not the median.

Writes bench_comm.json and bench_comm.png to --out and prints a table. A backend that is not
available here (nccl without CUDA GPUs, mpi without mpi4py) is skipped with the reason recorded.
The same file also runs one worker: `python -m distbench.comm.bench_comm --worker CONFIG.json`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distbench.comm.cost_model import bus_bandwidth, bus_factor, format_bytes
from distbench.core.errors import DistbenchError, UsageError
from distbench.results.records import is_number, utc_now
from distbench.strategies.collectives import MPICollectives, TorchCollectives
from distbench.system.cluster import detect
from distbench.system.fingerprint import fingerprint
from distbench.system.threads import usable_cores

BACKENDS = ("gloo", "mpi", "nccl")
JSON_NAME = "bench_comm.json"
PNG_NAME = "bench_comm.png"
TIMING_RULE = ("per size: warm-up allreduces untimed; then each repeat = barrier, one in-place "
               "allreduce (sum) of the --dtype buffer, timed on every rank; iteration latency = "
               "mean over ranks")
# Element types a gradient travels in: float32, or --compression fp16/bf16's wire type.
DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2}
# Launcher variables a parent (torchrun, mpiexec) may have left; workers must not inherit them.
RANK_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "PMI_RANK", "PMI_SIZE",
             "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "TF_CONFIG")


@dataclass
class BenchSpec:
    """What to measure. Defaults keep a full 1KB:64MB sweep of two backends around a minute."""

    backends: list[str]
    sizes: list[int]
    workers: int = 2
    repeats: int = 20
    warmup: int = 5
    threads_per_worker: int | None = None  # None: cores // workers, as for training runs
    timeout: float = 600.0
    dtype: str = "float32"

    def validate(self) -> None:
        if not self.backends:
            raise UsageError(f"--backends names no backend; choose from: {', '.join(BACKENDS)}")
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown:
            raise UsageError(f"unknown backend '{unknown[0]}'; choose from: {', '.join(BACKENDS)}")
        if self.workers < 2:
            raise UsageError(f"--workers must be >= 2 for an allreduce, got {self.workers}")
        if self.repeats < 1 or self.warmup < 0:
            raise UsageError("--repeats must be >= 1 and --warmup >= 0")
        if self.dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype}")
        if not 0 < self.timeout < math.inf:
            raise UsageError(f"--timeout must be a finite number of seconds > 0, got "
                             f"{self.timeout}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise UsageError(f"--threads-per-worker must be >= 1, got {self.threads_per_worker}")


# --------------------------------------------------------------------------- parent side


def unavailable(backend: str, workers: int, dtype: str = "float32") -> str | None:
    """Why `backend` cannot run `workers` ranks here, or None when it can."""
    from distbench.launch.local import mpiexec_path

    if backend == "mpi":
        if dtype == "bfloat16":
            return "MPI reads numpy buffers, and numpy has no bfloat16"
        if importlib.util.find_spec("mpi4py") is None:
            return 'mpi4py is not installed: pip install "distbench[mpi]"'
        try:
            mpiexec_path()
        except DistbenchError as exc:
            return str(exc)
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if backend == "gloo":
        return None if dist.is_gloo_available() else "this torch build has no gloo"
    if not torch.cuda.is_available():
        return "no CUDA device here (torch.cuda.is_available() is False)"
    if not dist.is_nccl_available():
        return "this torch build has no nccl"
    if torch.cuda.device_count() < workers:
        return (f"nccl needs one GPU per worker: {torch.cuda.device_count()} GPU(s) for "
                f"{workers} workers")
    return None


def write_worker_config(path: Path, backend: str, spec: BenchSpec, result_file: Path) -> None:
    """The one place that writes what `worker_main` reads, so other launchers cannot drift."""
    path.write_text(json.dumps({
        "backend": backend, "sizes": spec.sizes, "repeats": spec.repeats,
        "warmup": spec.warmup, "dtype": spec.dtype, "result": str(result_file),
    }))


def run_backend(backend: str, spec: BenchSpec, tmp: Path) -> list[dict[str, Any]]:
    """Start `spec.workers` ranks of one backend, wait for them, return rank 0's rows.

    The launcher's own start/supervise helpers do the work, so a dead rank stops its peers and
    is reported as in a training run, from mpiexec's exit statuses alone (these ranks write no
    PID files for the launcher to watch)."""
    from distbench.launch.local import Worker, free_port, mpiexec_command, start_process, supervise

    result_file = tmp / f"{backend}-result.json"
    config_file = tmp / f"{backend}-config.json"
    write_worker_config(config_file, backend, spec, result_file)
    threads = spec.threads_per_worker or max(1, usable_cores() // spec.workers)
    cmd = [sys.executable, "-m", "distbench.comm.bench_comm", "--worker", str(config_file)]
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    env.update(OMP_NUM_THREADS=str(threads), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(free_port()))
    if backend == "mpi":
        log = tmp / "mpi.log"
        mpi_cmd = [*mpiexec_command(spec.workers), *cmd]
        workers = [Worker(None, start_process(mpi_cmd, env, log, show_stdout=False), log)]
    else:
        workers = []
        for rank in range(spec.workers):
            rank_env = {**env, "RANK": str(rank), "WORLD_SIZE": str(spec.workers),
                        "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(spec.workers)}
            log = tmp / f"{backend}-rank{rank}.log"
            workers.append(Worker(rank, start_process(cmd, rank_env, log, show_stdout=False), log))
    supervise(workers, spec.timeout)
    return json.loads(result_file.read_text())


def run_bench_comm(spec: BenchSpec, out_dir: str | Path, log: Any = print) -> dict[str, Any]:
    """Measure every backend in turn; write the JSON and the plot; return the JSON object."""
    from distbench.launch.local import WorkerFailure, run_dir

    spec.validate()
    reasons = {b: unavailable(b, spec.workers, spec.dtype) for b in spec.backends}
    if all(reasons.values()):
        raise DistbenchError("no backend to measure here: " + "; ".join(
            f"{b}: {why}" for b, why in reasons.items()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = spec.threads_per_worker or max(1, usable_cores() // spec.workers)
    result: dict[str, Any] = {
        "kind": "bench-comm", "schema_version": 1, "started_at": utc_now(),
        "workers": spec.workers, "threads_per_worker": threads, "warmup": spec.warmup,
        "repeats": spec.repeats, "sizes": spec.sizes, "dtype": spec.dtype, "timing": TIMING_RULE,
        "busbw_definition": "busbw = algbw * 2(n-1)/n (nccl-tests); algbw = bytes / median time",
        "bus_factor": bus_factor(spec.workers), "results": [], "skipped": [], "failed": [],
    }
    tmp = run_dir()  # a training run's kind of folder: one left by a killed parent goes next time
    try:
        for backend in spec.backends:
            reason = reasons[backend]
            if reason:
                result["skipped"].append({"backend": backend, "reason": reason})
                log(f"skipping {backend}: {reason}")
                continue
            log(f"measuring {backend}: {spec.workers} workers x {len(spec.sizes)} sizes")
            try:
                result["results"] += run_backend(backend, spec, tmp)
            except WorkerFailure as exc:
                reason = str(exc).splitlines()[0]
                result["failed"].append({"backend": backend, "reason": reason})
                log(f"{backend} failed: {reason}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["env"] = fingerprint()
    (out / JSON_NAME).write_text(json.dumps(result, indent=1))
    if result["results"]:
        plot_bench_comm(result, out / PNG_NAME)
    return result


def load_bench_comm(path: str | Path) -> dict[str, Any]:
    """A bench-comm JSON, from the file or the directory holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / JSON_NAME
    if not p.is_file():
        raise UsageError(f"no bench-comm results at {path}")
    try:
        data = json.loads(p.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        raise UsageError(f"{p} is not a bench-comm result (not JSON)") from None
    if not isinstance(data, dict) or data.get("kind") != "bench-comm":
        raise UsageError(f"{p} is not a bench-comm result (no \"kind\": \"bench-comm\")")
    problem = _results_problem(data)
    if problem:
        raise UsageError(f"{p} is not a bench-comm result a fit can use: {problem}")
    return data


def _results_problem(data: dict[str, Any]) -> str | None:
    """Why the rows of a bench-comm JSON cannot be fitted, or None: the file may be hand-made,
    and every number in it becomes a float in the fit."""
    rows = data.get("results")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return "\"results\" is not a list of objects"
    for i, row in enumerate(rows):
        workers = row.get("workers", data.get("workers"))
        checks = [(isinstance(row.get("backend"), str), "backend", "a string"),
                  (_is_int(row.get("size_bytes"), 1), "size_bytes", "an integer >= 1"),
                  (_is_int(workers, 2), "workers", "an integer >= 2"),
                  (_is_time(row.get("latency_median_s")), "latency_median_s", "a time > 0")]
        if row.get("latency_mean_s") is not None:
            checks.append((_is_time(row["latency_mean_s"]), "latency_mean_s", "a time > 0"))
        if row.get("times_s") is not None:
            times = row["times_s"]
            checks.append((isinstance(times, list) and all(map(_is_time, times)), "times_s",
                           "a list of times > 0"))
        bad = next(((key, kind) for ok, key, kind in checks if not ok), None)
        if bad:
            return f"results[{i}]: {bad[0]} is not {bad[1]}"
    return None


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= 2**62


def _is_time(value: Any) -> bool:
    return is_number(value) and value > 0


def print_bench_table(result: dict[str, Any], console: Any = None) -> None:
    """The rows as a rich table: latency median [IQR], algbw and busbw in GB/s (1e9 B/s)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"allreduce of {result.get('dtype', 'float32')}, {result['workers']} "
                        f"workers, {result['threads_per_worker']} thread(s) each, median of "
                        f"{result['repeats']} (warm-up {result['warmup']} excluded)")
    for name in ("backend", "size", "latency us", "IQR us", "algbw GB/s", "busbw GB/s"):
        table.add_column(name, justify="left" if name in ("backend", "size") else "right")
    for row in result["results"]:
        table.add_row(
            row["backend"], format_bytes(row["size_bytes"]), f"{row['latency_median_s'] * 1e6:.1f}",
            f"{row['latency_q1_s'] * 1e6:.1f}–{row['latency_q3_s'] * 1e6:.1f}",
            f"{row['algbw_Bps'] / 1e9:.3f}", f"{row['busbw_Bps'] / 1e9:.3f}",
        )
    console.print(table)
    for item in result["skipped"] + result["failed"]:
        console.print(f"{item['backend']}: not measured ({item['reason']})")


def plot_bench_comm(result: dict[str, Any], path: Path) -> None:
    """Latency and bus bandwidth against size, log-log, one line per backend, IQR shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, (ax_lat, ax_bw) = plt.subplots(1, 2, figsize=(10, 4.2))
    for backend in dict.fromkeys(r["backend"] for r in result["results"]):
        rows = [r for r in result["results"] if r["backend"] == backend]
        sizes = [r["size_bytes"] for r in rows]
        (line,) = ax_lat.loglog(sizes, [r["latency_median_s"] * 1e6 for r in rows], marker="o",
                                markersize=3, label=backend)
        ax_lat.fill_between(sizes, [r["latency_q1_s"] * 1e6 for r in rows],
                            [r["latency_q3_s"] * 1e6 for r in rows], alpha=0.2,
                            color=line.get_color())
        ax_bw.loglog(sizes, [r["busbw_Bps"] / 1e9 for r in rows], marker="o", markersize=3,
                     label=backend, color=line.get_color())
    size_fmt = FuncFormatter(lambda v, _pos: format_bytes(v).replace(" ", ""))
    for ax, ylabel in ((ax_lat, "latency, median (us); band = IQR"),
                       (ax_bw, "bus bandwidth (GB/s) = algbw · 2(n−1)/n")):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(size_fmt)
        ax.set_xlabel("message size")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.suptitle(f"allreduce, {result['workers']} workers")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- worker side


def open_collectives(backend: str) -> TorchCollectives | MPICollectives:
    """This rank's collectives, the very ones the strategies use, joined and ready."""
    if backend == "mpi":
        return MPICollectives()
    import torch

    env = detect()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device = torch.device("cuda", env.local_rank) if backend == "nccl" else torch.device("cpu")
    coll = TorchCollectives(backend, env, device)
    coll.join()
    return coll


def summarize(backend: str, nbytes: int, world: int,
              per_rank: list[list[float]]) -> dict[str, Any]:
    """One row: per-iteration latency = mean over ranks; median, IQR, algbw, busbw."""
    import numpy as np

    from distbench.system.timing import iqr, median

    per_iter = np.mean(np.asarray(per_rank, dtype=float), axis=0)
    mid = median(per_iter)
    q1, q3 = iqr(per_iter)
    return {"backend": backend, "size_bytes": nbytes, "workers": world,
            "latency_median_s": mid, "latency_q1_s": q1, "latency_q3_s": q3,
            "latency_mean_s": float(np.mean(per_iter)),
            "algbw_Bps": nbytes / mid, "busbw_Bps": bus_bandwidth(nbytes, mid, world),
            "times_s": per_iter.tolist()}


def worker_main(config_path: str) -> None:
    """One rank: time every size, then rank 0 writes the rows to the result file."""
    from distbench.system.threads import apply_wait_defaults
    from distbench.system.timing import clock

    apply_wait_defaults()  # before torch loads libgomp, as in the training workers

    cfg = json.loads(Path(config_path).read_text())
    coll = open_collectives(cfg["backend"])
    element = DTYPES[cfg["dtype"]]
    rows = []
    try:
        for size in cfg["sizes"]:
            numel = max(1, size // element)
            buf = coll.zeros(numel, cfg["dtype"])
            for _ in range(cfg["warmup"]):
                coll.sum_in_place(buf)
                coll.synchronize()
            times = []
            for _ in range(cfg["repeats"]):
                coll.barrier()
                start = clock()
                coll.sum_in_place(buf)
                coll.synchronize()
                times.append(clock() - start)
            per_rank = coll.all_gather(times)
            rows.append(summarize(cfg["backend"], numel * element, coll.world, per_rank))
        coll.barrier()
    finally:
        coll.leave()
    if coll.rank == 0:
        Path(cfg["result"]).write_text(json.dumps(rows))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit("usage: python -m distbench.comm.bench_comm --worker CONFIG.json "
                 "(started by `distbench bench-comm`)")
    worker_main(sys.argv[2])
