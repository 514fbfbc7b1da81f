"""Per-cell statistics from run records: every number the tables and plots show comes from here.

Command: distbench report results/<timestamp>/

Records are grouped into *setups* (same host, dataset, model, epochs, batch rule, optimizer,
learning rate and device: runs whose times may be compared) and, inside a setup, into *cells*
(strategy, workers). Speedup is always against the baseline of the same setup, so records merged
from another machine never become the baseline of this one. Only the JSON records are read;
nothing is re-measured.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distbench.report.stats import Interval, median_interval, ratio_interval
from distbench.strategies import STRATEGIES, Framework, framework_baselines
from distbench.system.timing import iqr, median

# The message the launcher records when the user pressed Ctrl-C. Such a run says nothing about
# the strategy, so it is neither a success nor a failure: `compare --resume` runs it again.
INTERRUPTED = "interrupted by the user"
# Each framework's baseline, by framework name as records store it; the PyTorch one is the study's.
FRAMEWORK_BASELINES = {fw.value: name for fw, name in framework_baselines().items()}
BASELINE = FRAMEWORK_BASELINES[Framework.PYTORCH.value]
MAX_REASON_CHARS = 200
# Ranks whose training times differ by more than this are shown as skewed.
RANK_SKEW = 0.10


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True, order=True)
class Setup:
    """What must be equal for two runs' times to be comparable."""

    dataset: str
    model: str
    epochs: int
    # The global batch under strong scaling, the per-worker batch under weak scaling: the
    # number the user chose, which is the same for every cell of one study.
    batch: int
    scaling: str
    optimizer: str
    lr: float
    device: str
    host: str

    def title(self) -> str:
        batch = "global batch" if self.scaling == "strong" else "per-worker batch"
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return (f"{self.dataset} · {self.model} · {epochs} · {batch} {self.batch} "
                f"({self.scaling} scaling) · {self.optimizer} lr {self.lr:g} · {self.device} · "
                f"host {self.host}")


def setup_of(record: dict[str, Any]) -> Setup:
    """The setup a record belongs to; tolerant of hand-made records with few keys."""
    config = record.get("config") or {}
    workers = int(record.get("workers") or 1)
    scaling = record.get("scaling") or config.get("scaling") or "strong"
    batch = config.get("batch_size")
    if batch is None:
        global_batch = int(record.get("global_batch") or 0)
        batch = global_batch // workers if scaling == "weak" else global_batch
    return Setup(
        dataset=str(record.get("dataset", "?")),
        model=str(record.get("model", "?")),
        epochs=int(record.get("epochs") or 0),
        batch=int(batch),
        scaling=str(scaling),
        optimizer=str(record.get("optimizer") or config.get("optimizer") or "?"),
        lr=float(record.get("lr") or config.get("lr") or 0.0),
        device=str(config.get("device", "cpu")),
        host=str((record.get("env") or {}).get("host", "?")),
    )


def setup_of_config(cfg: Any, host: str) -> Setup:
    """The setup the runs of `cfg` (a RunConfig) will belong to when run on `host`."""
    return Setup(dataset=cfg.data.name, model=cfg.model.name, epochs=cfg.epochs,
                 batch=cfg.batch_size, scaling=cfg.scaling, optimizer=cfg.optimizer,
                 lr=float(cfg.lr), device=cfg.device, host=host)


def is_interrupted(record: dict[str, Any]) -> bool:
    return record.get("status") != "ok" and record.get("error") == INTERRUPTED


def is_complete(record: dict[str, Any]) -> bool:
    """A run that produced an answer: a measurement, or a genuine failure of the strategy."""
    return not is_interrupted(record)


def strategy_order(name: str) -> tuple[int, str]:
    """Registry order (baselines first), then unknown names alphabetically: stable tables. A
    compressed cell's label (`ddp+fp16`) follows its strategy's exact one."""
    base = name.split("+")[0]
    names = list(STRATEGIES)
    rank = names.index(base) if base in names else len(names)
    if base in STRATEGIES and STRATEGIES[base].baseline:
        rank = -2 if base == BASELINE else -1
    return rank, name


def cell_label(strategy: str, compression: str) -> str:
    """A cell's name in every view: the strategy, and its lossy compression if any."""
    return strategy if compression == "none" else f"{strategy}+{compression}"


def compression_of(record: dict[str, Any]) -> str:
    return str(record.get("compression") or (record.get("config") or {}).get("compression")
               or "none")


# --------------------------------------------------------------------------- statistics


@dataclass
class CellStats:
    """One row of every table: the statistics of one (strategy, compression, workers) cell in
    one setup. `strategy` is the cell's label (`ddp+fp16` for a compressed one)."""

    setup: Setup
    strategy: str
    framework: str
    workers: int
    compression: str = "none"
    exact: bool | None = None  # computes the baseline's update exactly (records' `exact`)
    # Test accuracy minus that of the same strategy and workers uncompressed (compressed cells).
    acc_delta: float | None = None
    state_mb: float | None = None  # model state per rank: the largest rank, median over runs
    rss_mb: float | None = None  # peak RSS per rank: the largest rank, median over runs
    runs: int = 0
    ok: int = 0
    failed: int = 0
    interrupted: int = 0
    errors: list[str] = field(default_factory=list)  # distinct reasons, most frequent first
    train_s: list[float] = field(default_factory=list)  # every successful run, in run order
    train_median: float | None = None
    train_q1: float | None = None
    train_q3: float | None = None
    train_ci: Interval | None = None  # 95% bootstrap interval of the median
    samples_per_s: float | None = None
    speedup: float | None = None  # vs `single` in the same setup
    speedup_ci: Interval | None = None  # 95% bootstrap over interleaved rounds
    efficiency: float | None = None  # speedup / workers
    core_efficiency: float | None = None  # speedup / (cores used / baseline's cores used)
    framework_baseline: str | None = None
    speedup_fw: float | None = None  # vs the framework's own baseline (tf-single for TF rows)
    efficiency_fw: float | None = None
    test_acc_median: float | None = None
    test_acc_min: float | None = None
    time_to_target: float | None = None
    target_reached: int = 0
    comm_fraction: float | None = None
    comm_s: float | None = None
    compute_s: float | None = None
    comm_method: str | None = None
    backend: str | None = None
    steps: int | None = None
    contended: int = 0  # runs measured while other processes used the cores
    rank_skew: float | None = None  # median over runs of slowest / fastest rank - 1
    startup_s: float | None = None
    worker_start: str | None = None  # "fork", "exec" (records before the field: exec'd)
    data_s: float | None = None
    threads_per_worker: int | None = None
    cores: int | None = None
    cores_used: int | None = None
    global_batch: int | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)  # (wall s, test accuracy)
    notes: list[str] = field(default_factory=list)
    # Findings a reader must not miss (implausible speedups, skewed ranks): shown with the verdict.
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "failed" if self.failed else "interrupted"

    @property
    def reason(self) -> str | None:
        """The failure to show: the most frequent reason, with a count when not every run failed."""
        if not self.errors:
            return None
        return self.errors[0]


def _med(values: Iterable[Any]) -> float | None:
    clean = [float(v) for v in values if v is not None]
    return median(clean) if clean else None


def _short(reason: str) -> str:
    lines = (reason or "").strip().splitlines()
    line = lines[0].strip() if lines else "failed without a reason"
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


def _elapsed(record: dict[str, Any]) -> list[float]:
    """Cumulative train time after each epoch, of the slowest rank in each epoch (`epoch_s`):
    the definition the table's train time uses, so every view agrees. An epoch no rank timed
    (null) ends the list: the times after it are unknown."""
    total, out = 0.0, []
    for t in record.get("epoch_s") or []:
        if t is None:
            break
        total += float(t)
        out.append(total)
    return out


def _curve(records: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """Per-epoch medians across repeats of (cumulative train time, test accuracy)."""
    histories = [r.get("history") or [] for r in records]
    times = [_elapsed(r) or [h.get("time_s") for h in r.get("history") or []] for r in records]
    epochs = min((min(len(h), len(t)) for h, t in zip(histories, times)), default=0)
    curve = []
    for e in range(epochs):
        t = _med(ts[e] for ts in times)
        a = _med(h[e].get("test_accuracy") for h in histories)
        if t is not None and a is not None:
            curve.append((t, a))
    return curve


def _mode(values: Iterable[Any]) -> Any:
    counted = Counter(v for v in values if v is not None)
    return min(counted, key=lambda v: (-counted[v], str(v))) if counted else None


def cell_stats(setup: Setup, strategy: str, workers: int,
               records: Sequence[dict[str, Any]], compression: str = "none") -> CellStats:
    """Everything about one cell that does not need the baseline."""
    def good(r: dict[str, Any]) -> bool:
        return r.get("status") == "ok" and r.get("train_s") is not None

    ok = [r for r in records if good(r)]
    bad = [r for r in records if not good(r)]
    interrupted = [r for r in bad if is_interrupted(r)]
    failed = [r for r in bad if not is_interrupted(r)]
    reasons = Counter(_short(r.get("error") or "") for r in failed)
    framework = _mode(r.get("framework") for r in records) or (
        STRATEGIES[strategy].framework.value if strategy in STRATEGIES else "?")
    c = CellStats(setup=setup, strategy=cell_label(strategy, compression), framework=framework,
                  workers=workers, compression=compression, runs=len(records), ok=len(ok),
                  failed=len(failed), interrupted=len(interrupted),
                  errors=sorted(reasons, key=lambda k: (-reasons[k], k)))
    c.threads_per_worker = _mode(r.get("threads_per_worker") for r in ok or records)
    c.cores = _mode((r.get("env") or {}).get("cores") for r in records)
    c.global_batch = _mode(r.get("global_batch") for r in records)
    c.comm_method = _mode(r.get("comm_method") for r in ok)
    # Worker processes: one for replicas inside one process (tf-mirrored), who share its threads.
    processes = _mode(len(r["workers_info"]) for r in ok or records if r.get("workers_info"))
    processes = processes or workers
    if c.cores and c.threads_per_worker:
        c.cores_used = min(c.cores, processes * c.threads_per_worker)
    if c.cores and workers > c.cores:
        c.notes.append(f"{workers} workers on {c.cores} cores: oversubscribed, the workers "
                       "share cores, so the time includes contention")
    elif c.cores and c.threads_per_worker and processes * c.threads_per_worker > c.cores:
        c.notes.append(f"{processes} workers × {c.threads_per_worker} threads on {c.cores} "
                       "cores: threads oversubscribed")
    if failed and ok:
        c.notes.append(f"{len(failed)} of {len(failed) + len(ok)} runs failed: {c.errors[0]}")
    if not ok:
        return c
    c.train_s = [float(r["train_s"]) for r in ok]
    c.train_median = median(c.train_s)
    c.train_q1, c.train_q3 = iqr(c.train_s)
    c.train_ci = median_interval(c.train_s)
    c.steps = _mode(r.get("steps") for r in ok)
    c.backend = _mode(r.get("backend") for r in ok)
    c.contended = sum(bool((r.get("machine_state") or {}).get("contended")) for r in ok)
    fewer = [r["threads_note"] for r in ok if isinstance(r.get("threads_note"), str)]
    if fewer:
        c.notes.append(f"{len(fewer)} of {len(ok)} runs started beside busy cores and took fewer "
                       f"threads ({fewer[0]})")
    _rank_skew(c, ok)
    c.samples_per_s = _med(r.get("samples_per_s") for r in ok)
    c.test_acc_median = _med(r.get("test_accuracy") for r in ok)
    accs = [r["test_accuracy"] for r in ok if r.get("test_accuracy") is not None]
    c.test_acc_min = float(min(accs)) if accs else None
    reached = [r["time_to_target_s"] for r in ok if r.get("time_to_target_s") is not None]
    c.target_reached = len(reached)
    c.time_to_target = _med(reached)
    c.comm_fraction = _med(r.get("comm_fraction") for r in ok)
    c.comm_s = _med(r.get("comm_s") for r in ok)
    c.compute_s = _med(float(r["train_s"]) - float(r["comm_s"]) for r in ok
                       if r.get("comm_s") is not None)
    c.startup_s = _med(r.get("startup_s") for r in ok)
    c.worker_start = ", ".join(sorted({str(r.get("worker_start") or "exec") for r in ok})) or None
    c.data_s = _med(r.get("data_s") for r in ok)
    c.curve = _curve(ok)
    _memory(c, ok)
    return c


def _memory(c: CellStats, ok: Sequence[dict[str, Any]]) -> None:
    """Exactness and the memory of the rank that holds the most, median over runs."""
    c.exact = _mode(r.get("exact") for r in ok)
    c.state_mb = _med(max(b) / 2**20 for r in ok
                      if (b := [v for v in r.get("model_state_bytes") or [] if v is not None]))
    c.rss_mb = _med(max(m) for r in ok
                    if (m := [v for v in r.get("peak_rss_mb") or [] if v is not None]))


def _rank_skew(c: CellStats, ok: Sequence[dict[str, Any]]) -> None:
    """Ranks of one run should finish together; a skew above RANK_SKEW is shown and explained."""
    skews = []
    for r in ok:
        times = [float(t) for t in r.get("per_rank_train_s") or [] if t]
        if len(times) > 1:
            skews.append(max(times) / min(times) - 1)
    if not skews:
        return
    c.rank_skew = median(skews)
    if c.rank_skew > RANK_SKEW:
        c.warnings.append(
            f"ranks finish {c.rank_skew:.0%} apart (median over runs): the slowest rank sets "
            "the train time. Each rank's clock starts after the same barrier, so start-up is "
            "outside it; a skew means one rank was slowed inside the epochs (a shared core, "
            "another process, or an uneven last step)")


def _plausibility(c: CellStats, base: CellStats) -> None:
    """A speedup above the worker count, or above the ratio of cores used, is flagged: the
    first cannot come from parallelism at all, the second not from the cores it was given."""
    low = c.speedup_ci.low if c.speedup_ci is not None else c.speedup
    if c.speedup is None or low is None:
        return
    if low > c.workers:
        c.warnings.append(
            f"speedup {c.speedup:.2f}× with {c.workers} worker(s) is implausible (more than the "
            "worker count): likely the baseline's runs were slowed (contention, a cold cache) "
            "or this row does less work; check the contended runs and repeat")
    elif base.cores_used and c.cores_used and low > c.cores_used / base.cores_used:
        c.warnings.append(
            f"speedup {c.speedup:.2f}× on {c.cores_used} core(s) against the baseline's "
            f"{base.cores_used} is super-linear per core: the baseline uses its cores less "
            "well (intra-op threads on small operations scale poorly) or was slowed; it is not "
            "a gain from parallelism")


def apply_baseline(cell: CellStats, base: CellStats | None) -> tuple[float | None, float | None]:
    """(speedup, efficiency = speedup / workers) against `base`, None where either is missing."""
    if base is None or base.train_median is None or not cell.train_median:
        return None, None
    speedup = base.train_median / cell.train_median
    return speedup, speedup / cell.workers


def _count(value: Any) -> str:
    """A count a record may leave null (a failed or hand-made record): "?" when unknown."""
    return f"{value:,}" if isinstance(value, int) else "?"


def _machine(env: dict[str, Any]) -> dict[str, Any]:
    scheduler = {k: v for k, v in (env.get("scheduler") or {}).items() if k != "TF_CONFIG"}
    return {**env, "scheduler": scheduler} if "scheduler" in env else env


@dataclass
class SetupSummary:
    """The cells of one setup, with what a reader needs beside the numbers."""

    setup: Setup
    cells: list[CellStats]
    records: list[dict[str, Any]]
    baseline: CellStats | None
    target: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def envs(self) -> list[dict[str, Any]]:
        """Distinct environment fingerprints, most frequent first.

        TF_CONFIG is left out: the local launcher writes one per run (fresh ports), so it tells
        runs apart without telling machines apart.
        """
        seen = Counter(json.dumps(_machine(r.get("env") or {}), sort_keys=True)
                       for r in self.records)
        return [json.loads(e) for e in sorted(seen, key=lambda k: (-seen[k], k))]

    def workload(self) -> str:
        """The model and data as trained: parameters per framework (Keras counts its
        normalisation's statistics too), the user model's file hash, the split sizes and the
        input shape, so a reader knows what the times are times of."""
        ok = [r for r in self.records if r.get("status") == "ok"]
        params: dict[int, set[str]] = {}
        for r in ok:
            if isinstance(r.get("model_params"), int):
                params.setdefault(r["model_params"], set()).add(str(r.get("framework")))
        model = f"model {self.setup.model}"
        if params:
            model += " (" + "; ".join(f"{n:,} parameters in {', '.join(sorted(f))}"
                                      for n, f in sorted(params.items())) + ")"
        hashes = sorted({str(r["model_sha256"]) for r in ok if r.get("model_sha256")})
        if hashes:
            model += f", SHA-256 {' / '.join(h[:12] for h in hashes)}"
        sizes = sorted({(r["train_samples"], _count(r.get("test_samples")),
                         "x".join(map(str, r.get("input_shape") or [])), _count(r.get("classes")))
                        for r in ok if isinstance(r.get("train_samples"), int)})
        data = f"dataset {self.setup.dataset}"
        if sizes:
            data += " (" + "; ".join(f"{a:,} training and {b} test samples of {shape}, "
                                     f"{k} classes" for a, b, shape, k in sizes) + ")"
        return f"{model}; {data}"

    def fairness(self) -> dict[str, Any]:
        """The fairness settings the runs actually used (DESIGN §3), as recorded."""
        def values(key: str, source: str = "record") -> str:
            got = set()
            for r in self.records:
                v = r.get(key) if source == "record" else (r.get("config") or {}).get(key)
                got.add(json.dumps(v))
            return ", ".join(sorted(got))

        threads = {f"{c.strategy} ×{c.workers}": c.threads_per_worker for c in self.cells}
        return {
            "scaling": self.setup.scaling,
            "batch": (f"global batch {self.setup.batch}, split over the workers"
                      if self.setup.scaling == "strong"
                      else f"{self.setup.batch} per worker (global batch grows with workers)"),
            "global batch per cell": {f"{c.strategy} ×{c.workers}": c.global_batch
                                      for c in self.cells},
            "threads per worker": threads,
            "epochs": self.setup.epochs,
            "optimizer": f"{self.setup.optimizer}, lr {self.setup.lr:g}",
            "optimizer implementation": values("optimizer_impl", "config"),
            "optimizer call": {str(r.get("strategy")): r["optimizer_call"] for r in self.records
                               if r.get("optimizer_call")},
            "seed": values("seed"),
            "warm-up steps": values("warmup_steps", "config"),
            "comm measured by": {c.strategy: c.comm_method for c in self.cells if c.comm_method},
        }


@dataclass
class Study:
    setups: list[SetupSummary]
    records: list[dict[str, Any]]

    @property
    def cells(self) -> list[CellStats]:
        return [c for s in self.setups for c in s.cells]


def analyse(records: Sequence[dict[str, Any]]) -> Study:
    """Group, compute per-cell statistics, then speedups against each setup's baselines."""
    by_setup: dict[Setup, list[dict[str, Any]]] = {}
    for r in records:
        by_setup.setdefault(setup_of(r), []).append(r)
    summaries = []
    for setup in sorted(by_setup):
        recs = by_setup[setup]
        by_cell: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for r in recs:
            key = (str(r.get("strategy")), compression_of(r), int(r.get("workers") or 1))
            by_cell.setdefault(key, []).append(r)
        keys = sorted(by_cell, key=lambda k: (strategy_order(cell_label(k[0], k[1])), k[2]))
        cells = [cell_stats(setup, s, w, by_cell[(s, z, w)], z) for s, z, w in keys]
        summaries.append(_with_baselines(setup, cells, recs))
    return Study(summaries, list(records))


def _accuracy_deltas(cells: list[CellStats]) -> None:
    """Each compressed cell against its exact twin (same strategy and workers, no compression):
    a compressed cell that is faster but less accurate must not read as a plain win."""
    exact = {(c.strategy, c.workers): c for c in cells if c.compression == "none"}
    for c in cells:
        twin = exact.get((c.strategy.split("+")[0], c.workers))
        if c.compression == "none" or twin is None:
            continue
        if c.test_acc_median is not None and twin.test_acc_median is not None:
            c.acc_delta = c.test_acc_median - twin.test_acc_median


def _with_baselines(setup: Setup, cells: list[CellStats],
                    records: list[dict[str, Any]]) -> SetupSummary:
    def find(name: str) -> CellStats | None:
        return next((c for c in cells if c.strategy == name and c.workers == 1), None)

    _accuracy_deltas(cells)

    base = find(BASELINE)
    notes = []
    if base is None or base.train_median is None:
        why = "was not run" if base is None else f"has no successful run ({base.status})"
        notes.append(f"baseline `{BASELINE}` ×1 {why} in this setup: speedup and efficiency "
                     "are not available")
    for c in cells:
        c.speedup, c.efficiency = apply_baseline(c, base)
        if c.speedup is not None and base is not None:
            if c is not base:
                c.speedup_ci = ratio_interval(base.train_s, c.train_s)
                _plausibility(c, base)
            if base.cores_used and c.cores_used:
                c.core_efficiency = c.speedup / (c.cores_used / base.cores_used)
        fw_name = FRAMEWORK_BASELINES.get(c.framework)
        if fw_name and fw_name != BASELINE:
            c.framework_baseline = fw_name
            c.speedup_fw, c.efficiency_fw = apply_baseline(c, find(fw_name))
    for fw, fw_name in FRAMEWORK_BASELINES.items():
        if fw_name != BASELINE and find(fw_name) is None and any(
                c.framework_baseline == fw_name for c in cells):
            notes.append(f"baseline `{fw_name}` was not run: the {fw} view has no speedups")
    targets = {(r.get("config") or {}).get("target_accuracy") for r in records} - {None}
    target = max(targets) if len(targets) == 1 else None
    if len(targets) > 1:
        notes.append(f"runs used different --target-accuracy values {sorted(targets)}: "
                     "time to accuracy is not summarised")
        for c in cells:
            c.time_to_target, c.target_reached = None, 0
    return SetupSummary(setup, cells, records, base, target, notes)


# --------------------------------------------------------------------------- loading


def load_dirs(dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Records of several results directories (or runs.jsonl files), merged.

    The same run found twice (a copied directory) is kept once, by run_id; the result is sorted
    by start time and run_id, so the order of the arguments does not change any output.
    """
    from distbench.core.errors import UsageError
    from distbench.results.records import RUNS_FILE, load_records

    merged: dict[str, dict[str, Any]] = {}
    for d in dirs:
        path = Path(d)
        file = path / RUNS_FILE if path.is_dir() else path
        if not file.is_file():
            raise UsageError(f"no {RUNS_FILE} in {d}: pass a results directory of distbench "
                             "run or compare")
        for r in load_records(file, required=True):
            key = r.get("run_id") or json.dumps(r, sort_keys=True)
            merged.setdefault(str(key), r)
    return sorted(merged.values(), key=lambda r: (str(r.get("started_at", "")),
                                                  str(r.get("run_id", ""))))
