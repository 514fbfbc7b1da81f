"""Project measured runs to more workers with the α-β model of ring allreduce.

Command: distbench project RESULTS_DIR --workers 8,64,512 --bandwidth 25Gbit/s --latency 5us
Also:    distbench project RESULTS_DIR --workers 8,64 --from-bench-comm BENCH_DIR/bench_comm.json
         distbench project --compute-s 0.29 --grad-bytes 97.7MB --scaling weak \\
             --workers 8,16,32 --bandwidth 25Gbit/s --latency 5us      (inputs typed in)

From each group of runs in RESULTS_DIR (same strategy, worker count, model, data, batch) it takes
the compute time per step, (train_s - comm_s) / steps, and the bytes its gradient collectives send
(`wire_bytes`: float32, or what `--compression` sends; else the parameter count of the named model
× 4 bytes), then predicts step time, speedup and
efficiency at each worker count n with the cost model in `distbench.comm.cost_model`. The model and
every assumption are printed with the table (`ASSUMPTIONS`) and written to projection.json.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distbench.comm.cost_model import (
    Link,
    StepModel,
    fit_link,
    format_bytes,
    optimizer_state_factor,
    state_bytes_per_rank,
    step_comm_s,
    step_times,
)
from distbench.comm.cost_model import speedup as speedup_of
from distbench.core.errors import UsageError
from distbench.report.analysis import cell_label, compression_of
from distbench.strategies import STRATEGIES, Overlap, Sharding

JSON_NAME = "projection.json"
PNG_NAME = "projection.png"
DEFAULT_BACKWARD_FRACTION = 2 / 3
# Input shape and classes of each dataset, to count a model's parameters without loading data.
# DDP's first gradient bucket is capped at 1 MiB (torch's default), later ones at --bucket-mb.
DDP_FIRST_BUCKET_BYTES = 2**20
DATASET_SHAPES = {"mnist": ((1, 28, 28), 10), "mnist-5k": ((1, 28, 28), 10),
                  "fashion-mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10)}

ASSUMPTIONS = """\
Model (a projection, not a measurement):
  ring allreduce of G gradient bytes over n workers:
      t_comm(n) = 2(n-1)·α + 2(n-1)/n · G/β        (α: latency per message, β: link bytes/s)
  sharded strategies (registry `sharding`): ZeRO-1 adds an all-gather of the updated
      parameters, t_comm(n) += (n-1)·α + (n-1)/n · G/β; FSDP instead does two parameter
      all-gathers and one gradient reduce-scatter, t_comm(n) = 3[(n-1)·α + (n-1)/n · G/β]
  model state per rank (ZeRO, SC'20; P = G parameter bytes, K optimizer state bytes, Adam
      K = 2P): replicas 2P + K, ZeRO-1 2P + K/n, FSDP (2P + K)/n
  no overlap (mpi, custom):                 step(n) = compute(n) + t_comm(n)
  overlap (ddp, custom --overlap):          step(n) = forward + max(backward, t_comm(n)),
      backward = {bf:.2f} × compute(n), forward = the rest; applies only when the gradient
      spans more than one bucket (ddp: first bucket 1 MiB; custom: --bucket-mb), since a
      single bucket can only be sent once backward has finished, and only on a GPU: on CPU
      the all-reduce competes with backward for the cores (measured: docs/projection.md)
  compute(n): compute per step measured at n0 workers, (train_s - comm_s) / steps;
      strong scaling (global batch fixed): compute(n) = compute(n0) · n0 / n;
      weak scaling (per-worker batch fixed): compute(n) = compute(n0)
  speedup(n) against one worker (no communication): strong t(1)/t(n), weak n·t(1)/t(n);
      efficiency = speedup / n
Assumptions:
  - one flat ring, every link with the same α and β, no contention, no stragglers, one allreduce
    of the whole gradient per step (each extra bucket adds latency the model leaves out);
  - compute divides evenly by n, including per-step costs that do not (the optimizer update on
    every parameter, framework overhead per step): optimistic at large n under strong scaling;
  - the overlapped schedule is a lower bound: the last bucket can only start when backward ends;
  - G = parameters × 4 bytes (float32 gradients); a compressed run sends what its record's
    `wire_bytes` says: fp16/bf16 G/2, PowerSGD rank r the uncompressed tensors, then r(m+k) for
    each m×k gradient matrix it compresses, as three all-reduces (each pays its latency)."""


@dataclass
class Workload:
    """What a projection needs from a group of measured runs (or from typed-in numbers)."""

    label: str
    workers: int  # n0, where compute_s was measured
    compute_s: float  # per step and worker at n0
    grad_bytes: int
    scaling: str = "strong"
    strategy: str | None = None
    backend: str | None = None
    overlaps: bool = False  # does this strategy overlap comm with backward?
    measured_step_s: float | None = None
    measured_comm_s: float | None = None  # per step
    runs: int = 0
    sharding: Sharding = Sharding.NONE
    optimizer_factor: float = 2.0  # optimizer state in parameter copies (Adam: 2)
    notes: list[str] = field(default_factory=list)
    # Bytes of each gradient all-reduce of a step, when compressed; None: one float32 gradient.
    wire_bytes: list[int] | None = None

    @property
    def payloads(self) -> list[int]:
        return self.wire_bytes or [self.grad_bytes]

    def compute_at(self, n: int) -> float:
        return self.compute_s if self.scaling == "weak" else self.compute_s * self.workers / n


@dataclass
class Row:
    workers: int
    compute_s: float
    comm_s: float
    serial_s: float
    overlap_s: float
    speedup_serial: float
    speedup_overlap: float
    efficiency_serial: float
    efficiency_overlap: float
    state_bytes: float = 0.0  # parameters, gradients and optimizer state per rank


def project(w: Workload, link: Link, workers: list[int],
            backward_fraction: float = DEFAULT_BACKWARD_FRACTION) -> list[Row]:
    """Rows for each n in `workers` (1, the baseline, is always the first row)."""
    base = w.compute_at(1)
    rows = []
    for n in sorted({1, *workers}):
        comm = step_comm_s(w.sharding, w.payloads, n, link)
        m: StepModel = step_times(w.compute_at(n), comm, n, backward_fraction)
        s_serial = speedup_of(base, m.serial_s, n, w.scaling)
        s_overlap = speedup_of(base, m.overlap_s, n, w.scaling)
        state = state_bytes_per_rank(w.sharding, w.grad_bytes, n,
                                     w.optimizer_factor * w.grad_bytes)
        rows.append(Row(n, m.compute_s, m.comm_s, m.serial_s, m.overlap_s, s_serial, s_overlap,
                        s_serial / n, s_overlap / n, state))
    return rows


# --------------------------------------------------------------------------- inputs


def grad_bytes_of(record: dict[str, Any]) -> int:
    """`grad_bytes` from the record, else the named model rebuilt and its parameters counted."""
    if record.get("grad_bytes"):
        return int(record["grad_bytes"])
    from distbench.core.config import ModelConfig
    from distbench.models.torch_models import build_model

    cfg = record.get("config") or {}
    data, model = cfg.get("data") or {}, cfg.get("model") or {}
    if record["dataset"] == "synthetic":
        shape = tuple(data.get("synthetic_shape", (1, 28, 28)))
        classes = int(data.get("synthetic_classes", 10))
    elif record["dataset"] in DATASET_SHAPES:
        shape, classes = DATASET_SHAPES[record["dataset"]]
    else:
        raise UsageError(f"record {record.get('run_id')} has no grad_bytes and dataset "
                         f"'{record['dataset']}' has no known shape; pass --grad-bytes")
    channels = shape[0]
    net = build_model(ModelConfig(record["model"], image_size=model.get("image_size")),
                      shape, classes, [0.0] * channels, [1.0] * channels)  # type: ignore[arg-type]
    return sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)


def wire_bytes_of(record: dict[str, Any], grad_bytes: int) -> list[int] | None:
    """What a compressed run's gradient all-reduces send per step (None when uncompressed)."""
    compression = compression_of(record)
    if compression == "none":
        return None
    stored = record.get("wire_bytes")
    if isinstance(stored, list) and stored and all(
            isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in stored):
        return stored
    if compression in ("fp16", "bf16"):
        return [grad_bytes // 2]
    raise UsageError(f"record {record.get('run_id')} ran with --compression {compression} but "
                     "stores no wire_bytes, so what it sends is unknown")


def overlaps(strategy: str, overlap_flag: bool, grad_bytes: int, bucket_mb: float,
             device: str = "cpu") -> bool:
    """Whether this run could send gradients during backward: on a GPU (the collectives run on
    their own stream), when its strategy overlaps and the gradient fills more than the first
    bucket (DDP's reducer: 1 MiB; otherwise --bucket-mb).

    On CPU the all-reduce's threads compete with backward for the same cores, and measured DDP
    steps over shaped links match the serial schedule (within 0.3-11% at 2-3 nodes, 200 Mbit/s
    and 1 Gbit/s), not the overlapped one (7-45% too fast): docs/projection.md."""
    if device != "cuda":
        return False
    cap = bucket_mb * 2**20
    overlap = STRATEGIES[strategy].overlap
    if overlap is Overlap.ALWAYS:
        return grad_bytes > min(DDP_FIRST_BUCKET_BYTES, cap)
    return overlap is Overlap.WITH_FLAG and overlap_flag and grad_bytes > cap


def _median(values: list[float]) -> float:
    from distbench.system.timing import median

    return median(values)


def workloads_from_records(records: list[dict[str, Any]],
                           strategies: list[str] | None = None) -> tuple[list[Workload], list[str]]:
    """One workload per group of successful runs; the medians over repeats. Also the skips."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    skipped: list[str] = []
    for r in records:
        if r.get("status") != "ok" or not r.get("steps") or not r.get("train_s"):
            continue
        if strategies and r["strategy"] not in strategies:
            continue
        info = STRATEGIES.get(r["strategy"])
        if info is None:
            skipped.append(f"{r['strategy']}: not a strategy this distbench knows")
            continue
        if not info.per_step_allreduce:
            skipped.append(f"{r['strategy']}: averages parameters every K steps, not gradients "
                           "every step")
            continue
        overlap = bool((r.get("config") or {}).get("overlap"))
        key = (r["strategy"], compression_of(r), overlap, r["workers"], r["dataset"], r["model"],
               r["global_batch"], r.get("scaling") or "strong", r.get("backend"))
        groups[key].append(r)
    workloads = []
    for (strategy, compression, overlap, n0, dataset, model, batch, scaling, backend), runs in (
            groups.items()):
        comm = _median([(r.get("comm_s") or 0.0) / r["steps"] for r in runs])
        step = _median([r["train_s"] / r["steps"] for r in runs])
        notes = []
        if any(r.get("comm_s") is None for r in runs) and n0 > 1:
            notes.append("comm time not separated in these records: compute includes it")
        name = cell_label(strategy, compression) + (" --overlap" if overlap else "")
        grad_bytes = grad_bytes_of(runs[0])
        bucket_mb = float((runs[0].get("config") or {}).get("bucket_mb") or 25.0)
        workloads.append(Workload(
            label=f"{name} ×{n0} · {dataset}/{model} · batch {batch}",
            # compute = median step - median comm, so that the parts add up to the step shown
            workers=n0, compute_s=max(step - comm, 1e-9),
            grad_bytes=grad_bytes, scaling=scaling, strategy=strategy, backend=backend,
            overlaps=overlaps(strategy, overlap, grad_bytes, bucket_mb,
                              str((runs[0].get("config") or {}).get("device") or "cpu")),
            measured_step_s=step, measured_comm_s=comm, runs=len(runs),
            notes=notes, sharding=STRATEGIES[strategy].sharding,
            wire_bytes=wire_bytes_of(runs[0], grad_bytes),
            optimizer_factor=optimizer_state_factor(runs[0].get("optimizer"),
                                                    (runs[0].get("config") or {}).get("momentum")),
        ))
    workloads.sort(key=lambda w: w.label)
    return workloads, sorted(set(skipped))


def expected_latency(row: dict[str, Any]) -> float:
    """The mean latency of a bench-comm row (from its samples when the field is absent), else the
    median. A step pays the sum of its allreduces, so the mean is what adds up; on a shared or
    virtualised machine latency is often bimodal (a blocked thread woken late) and the median
    would hide the slow mode."""
    if row.get("latency_mean_s"):
        return float(row["latency_mean_s"])
    if row.get("times_s"):
        return float(sum(row["times_s"]) / len(row["times_s"]))
    return float(row["latency_median_s"])


def links_from_bench_comm(path: str | Path) -> dict[str, Link]:
    """α and β fitted per backend from a bench-comm JSON (mean latency of every size)."""
    from distbench.comm.bench_comm import load_bench_comm

    data = load_bench_comm(path)
    by_backend: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for row in data["results"]:
        by_backend[row["backend"]].append(
            (row.get("workers", data["workers"]), row["size_bytes"], expected_latency(row)))
    if not by_backend:
        raise UsageError(f"{path}: no measured backend to fit")
    links = {b: fit_link(points, f"fit to {b} bench-comm mean latency, {len(points)} sizes")
             for b, points in by_backend.items()}
    for backend, link in links.items():
        check_link(link, f"{path}: the {backend} fit")
    return links


def check_link(link: Link, what: str) -> None:
    """A link the projection can compute with: every number in projection.json must be finite
    (JSON has no Infinity or NaN)."""
    if not (0 <= link.alpha_s < math.inf and 0 < link.beta_Bps < math.inf):
        raise UsageError(f"{what} gives latency {link.alpha_s:g} s and bandwidth "
                         f"{link.beta_Bps:g} B/s; need a finite latency >= 0 and a finite "
                         "bandwidth > 0")


def choose_link(w: Workload, links: dict[str, Link], backend: str | None) -> Link:
    """The asked backend, else the workload's own (mpi for mpi, gloo for ddp), else the first."""
    wanted = backend or w.backend
    if backend and backend not in links:
        raise UsageError(f"--backend {backend}: the bench-comm file has {', '.join(links)}")
    return links.get(wanted or "", next(iter(links.values())))


# --------------------------------------------------------------------------- output


Result = tuple[Workload, Link, list[Row]]


def _strategy_key(w: Workload) -> str:
    return w.label.split(" ×")[0] + (" · " + w.label.split(" · ", 1)[1] if " · " in w.label
                                     else "")


def summary(results: list[Result]) -> list[tuple[Result, str]]:
    """One projection per strategy and workload, from the cell that measures it best, and why:
    the most workers (its communication is real, not a one-rank copy) with communication
    separated, then the most runs."""
    def how_well(result: Result) -> tuple[bool, int, int]:
        w = result[0]
        return (w.measured_comm_s is not None and not w.notes, w.workers, w.runs)

    best: dict[str, Result] = {}
    for result in results:
        key = _strategy_key(result[0])
        if key not in best or how_well(result) > how_well(best[key]):
            best[key] = result
    out = []
    for key in sorted(best):
        w = best[key][0]
        why = (f"measured at {w.workers} workers (the most, so its communication is real), "
               f"{w.runs} run(s)" if w.workers > 1 else
               f"measured at 1 worker only, {w.runs} run(s): communication is modelled, not "
               "measured")
        out.append((best[key], why))
    return out


def applied(w: Workload, r: Row) -> tuple[float, float]:
    """(step s, speedup) under the schedule that applies to the workload."""
    return (r.overlap_s, r.speedup_overlap) if w.overlaps else (r.serial_s, r.speedup_serial)


def print_summary(results: list[Result], console: Any) -> None:
    from rich import box
    from rich.table import Table

    chosen = summary(results)
    if not chosen:
        return
    counts = [r.workers for r in chosen[0][0][2]]
    table = Table(title="Projection per strategy (the schedule that applies to each; speedup "
                  "vs 1 worker)", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("strategy · workload", "measured step = compute + comm (ms)",
                 *(f"n={n}" for n in counts)):
        table.add_column(name, justify="left" if name.startswith("strategy") else "right")
    for (w, _link, rows), _why in chosen:
        step, comm = (round((v or 0) * 1e3, 2) for v in (w.measured_step_s, w.measured_comm_s))
        # Rounded alike, so that the parts shown add up to the step shown.
        parts = (f"{step:.2f} = {step - comm:.2f} + {comm:.2f}" if w.measured_step_s
                 else "typed in")
        table.add_row(w.label, parts, *(f"{applied(w, r)[1]:.2f}×" for r in rows))
    console.print(table)
    for (w, _link, _rows), why in chosen:
        console.print(f"  {w.label}: {why}", highlight=False)


def print_projection(results: list[Result], backward_fraction: float,
                     console: Any = None, details: bool = False) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    console.print(ASSUMPTIONS.format(bf=backward_fraction), markup=False, highlight=False)
    print_summary(results, console)
    if not details:
        console.print("Per measured cell, both schedules: --details.", highlight=False)
        return
    console.print("Columns: times in ms per step; * = the overlapped schedule.", highlight=False)
    for w, link, rows in results:
        schedule = "overlap" if w.overlaps else "no overlap"
        sends = (f" (sends {' + '.join(format_bytes(b) for b in w.wire_bytes)})"
                 if w.wire_bytes else "")
        table = Table(title=f"{w.label} · grad {format_bytes(w.grad_bytes)}{sends} · {w.scaling} "
                            f"scaling · applies here: {schedule}", title_justify="left",
                      box=box.SIMPLE_HEAD)
        for name in ("n", "compute", "comm", "step", "speedup", "eff", "step*", "speedup*",
                     "eff*", "state/rank"):
            table.add_column(name, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(str(r.workers), f"{r.compute_s * 1e3:.3g}", f"{r.comm_s * 1e3:.3g}",
                          f"{r.serial_s * 1e3:.3g}", f"{r.speedup_serial:.2f}×",
                          f"{r.efficiency_serial:.1%}", f"{r.overlap_s * 1e3:.3g}",
                          f"{r.speedup_overlap:.2f}×", f"{r.efficiency_overlap:.1%}",
                          format_bytes(r.state_bytes))
        console.print(table)
        console.print(f"  link: {link.describe()}", markup=False, highlight=False)
        if w.measured_step_s is not None:
            console.print(
                f"  measured at {w.workers} worker(s), median of {w.runs}: step "
                f"{w.measured_step_s * 1e3:.3g} ms = compute {w.compute_s * 1e3:.3g} ms + comm "
                f"{(w.measured_comm_s or 0) * 1e3:.3g} ms", highlight=False)
        for note in w.notes:
            console.print(f"  note: {note}", highlight=False)


def plot_projection(results: list[Result], path: Path) -> None:
    """Speedup (with the ideal line) and efficiency against workers, one line per strategy
    (its best-measured cell, the schedule that applies), the legend beside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [result for result, _why in summary(results)]
    fig, (ax_s, ax_e) = plt.subplots(1, 2, figsize=(12, 4.2))
    top = max(r.workers for _, _, rows in chosen for r in rows)
    ax_s.loglog([1, top], [1, top], color="grey", linestyle=":", label="ideal")
    for w, _link, rows in chosen:
        n = [r.workers for r in rows]
        speedups = [applied(w, r)[1] for r in rows]
        style = "--" if w.overlaps else "-"
        (line,) = ax_s.loglog(n, speedups, style, marker="o", markersize=3,
                              label=f"{w.label}{' (overlap)' if w.overlaps else ''}")
        ax_e.semilogx(n, [100 * s / k for s, k in zip(speedups, n)], style, marker="o",
                      markersize=3, color=line.get_color())
    ax_s.set_ylabel("projected speedup vs 1 worker")
    ax_e.set_ylabel("projected efficiency (%)")
    ax_e.set_ylim(0, 105)
    for ax in (ax_s, ax_e):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers")
        ax.grid(True, alpha=0.3)
    fig.legend(*ax_s.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(0.78, 0.5),
               fontsize=7, frameon=False)
    fig.suptitle("Projection: α-β ring allreduce model, one line per strategy")
    fig.tight_layout(rect=(0, 0, 0.77, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_projection(results: list[tuple[Workload, Link, list[Row]]], out: Path,
                     backward_fraction: float) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"kind": "projection", "schema_version": 1,
           "model": ASSUMPTIONS.format(bf=backward_fraction).splitlines(),
           "backward_fraction": backward_fraction,
           "workloads": [{**asdict(w), "link": asdict(link), "rows": [asdict(r) for r in rows]}
                         for w, link, rows in results]}
    (out / JSON_NAME).write_text(json.dumps(doc, indent=1))
    plot_projection(results, out / PNG_NAME)
    return [out / JSON_NAME, out / PNG_NAME]


# --------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class ProjectRequest:
    """What `distbench project` was asked, already parsed."""

    workers: list[int]  # worker counts to project to
    network: Link | Path  # a given link, or a bench-comm JSON (or its folder) to fit per backend
    inputs: Workload | Path  # a typed-in workload, or a compare/run output (folder or runs.jsonl)
    backend: str | None = None  # which fitted backend to use (default: each workload's own)
    strategies: list[str] | None = None  # only these strategies from the records
    backward_fraction: float = DEFAULT_BACKWARD_FRACTION
    out: Path | None = None  # default: beside the records, else ./projection
    details: bool = False  # also one table per measured cell, both schedules

    def validate(self) -> None:
        if not self.workers or min(self.workers) < 1:
            raise UsageError(f"--workers must be integers >= 1, got {self.workers}")
        if not 0 < self.backward_fraction < 1:
            raise UsageError(f"--backward-fraction must be in (0, 1), got "
                             f"{self.backward_fraction}")
        if isinstance(self.network, Link):
            check_link(self.network, "--bandwidth/--latency")


def _workloads(request: ProjectRequest) -> tuple[list[Workload], list[str]]:
    from distbench.results.records import load_records

    if isinstance(request.inputs, Workload):
        return [request.inputs], []
    path = request.inputs
    if not (path / "runs.jsonl").is_file() and not path.is_file():
        raise UsageError(f"no runs.jsonl in {path}")
    workloads, skipped = workloads_from_records(load_records(path, required=True),
                                                request.strategies)
    if not workloads:
        raise UsageError(f"no successful run to project in {path}")
    return workloads, skipped


def _link_for(request: ProjectRequest) -> Callable[[Workload], Link]:
    """The given link for every workload, or the link fitted to each workload's backend."""
    if isinstance(request.network, Link):
        given = request.network
        return lambda w: given
    links = links_from_bench_comm(request.network)
    return lambda w: choose_link(w, links, request.backend)


def run_project(request: ProjectRequest) -> list[Path]:
    """The `distbench project` command: inputs, projection, table, plot and JSON."""
    from rich.console import Console

    from distbench.results.records import check_out_dir

    request.validate()
    if request.out:
        check_out_dir(request.out)
    link_for = _link_for(request)
    workloads, skipped = _workloads(request)
    results = []
    for w in workloads:
        link = link_for(w)
        results.append((w, link, project(w, link, request.workers, request.backward_fraction)))
    console = Console(soft_wrap=True)
    print_projection(results, request.backward_fraction, console, request.details)
    for item in skipped:
        console.print(f"not projected: {item}", highlight=False)
    records = request.inputs if isinstance(request.inputs, Path) else None
    # Beside the records: RESULTS_DIR itself, or the folder of a runs.jsonl given directly.
    beside = (records.parent if records.is_file() else records) if records else None
    out = check_out_dir(request.out or beside or Path("projection"))
    return write_projection(results, out, request.backward_fraction)
