"""`distbench compare`: every strategy × worker count × repeat, run one at a time, then reported.

Command: distbench compare --strategies single,ddp --workers 1,2 --repeats 3 --dataset mnist-5k

Each run is a fresh `python -m distbench run --config DIR/configs/<strategy>-w<N>.json` process,
its cell's config (the study's shared settings with the cell's strategy and workers), so
TensorFlow, torch thread settings and memory never leak from one cell into the next, and each
record in `DIR/runs.jsonl` is exactly what that run wrote. Runs are interleaved
(A B C A B C ...) so that drift of the machine hits every strategy alike.

The baselines `single` and `tf-single` are one-process strategies: they run at 1 worker only,
whatever `--workers` says, and are added to the study when a strategy of their framework is in it
(unless `--no-baseline`), so speedups are always against a baseline measured in the same study.

A run that fails is recorded as failed with its one-line reason (by the run itself, or by compare
when the process died without writing one) and the study goes on. Ctrl-C stops the current run
(it records itself as interrupted) and leaves every finished record intact; `--resume DIR` runs
only what is missing. The plan (the shared settings as a `RunConfig`) and the commands are kept
in DIR/compare.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from distbench.core.config import RunConfig
from distbench.core.errors import UsageError, last_error, unknown_name
from distbench.data import prepare_dataset
from distbench.launch.local import run_dir
from distbench.launch.warmstart import WORKER_STARTS, WarmPool, warm_pool
from distbench.report import COMPARE_FILE
from distbench.report.analysis import is_complete, setup_of, setup_of_config
from distbench.results.records import RUNS_FILE, append_record, load_records, utc_now
from distbench.strategies import (
    STRATEGIES,
    foreign_options,
    framework_baselines,
    missing_framework,
)
from distbench.study.adaptive import AutoRepeats, stop_reason, widest
from distbench.study.best_model import describe as describe_best
from distbench.study.best_model import keep_best
from distbench.system.interrupts import die_with_parent, stop_on_termination
from distbench.system.noise import measure_noise, noise_warning

# A run that neither finishes nor fails within this long is stopped (unless --timeout is given).
CELL_TIMEOUT_S = 3600.0
# After a forwarded Ctrl-C, how long a run may take to stop its workers and record itself.
STOP_GRACE_S = 20.0
LOGS_DIR = "logs"
CONFIGS_DIR = "configs"


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Cell:
    strategy: str
    workers: int

    def label(self) -> str:
        return f"{self.strategy} ×{self.workers}"


@dataclass(frozen=True)
class Slot:
    cell: Cell
    repeat: int  # 0-based


def check_strategies(names: Sequence[str]) -> None:
    """Every name a registered strategy (whether installed or not), else a one-line error."""
    for name in names:
        if name not in STRATEGIES:
            raise unknown_name("strategy", name, list(STRATEGIES))


@dataclass
class Plan:
    """What to run: saved in compare.json so that `--resume` continues the same study."""

    strategies: list[str]
    workers: list[int]
    repeats: int
    # The settings every run shares; each cell sets its strategy, workers, --out and progress.
    # `save_model` here means: every run saves, and the study keeps the most accurate one.
    base: RunConfig = field(default_factory=RunConfig)
    # `--repeats auto`: `repeats` is then the rounds planned so far, grown one at a time.
    auto: AutoRepeats | None = None
    # How often a run measured while other processes used the cores is run again.
    rerun_contended: int = 0
    # How every run's workers start: forked from a fork server per framework, or exec'd.
    worker_start: str = "fork"

    def validate(self) -> None:
        check_strategies(self.strategies)
        if not self.workers or min(self.workers) < 1:
            raise UsageError(f"--workers must be integers >= 1, got {self.workers}")
        if self.repeats < 1:
            raise UsageError(f"--repeats must be >= 1, got {self.repeats}")
        if self.rerun_contended < 0:
            raise UsageError(f"--rerun-contended must be >= 0, got {self.rerun_contended}")
        if self.worker_start not in WORKER_STARTS:
            raise UsageError(f"--worker-start must be fork or exec, got {self.worker_start!r}")
        if self.auto and not (0 < self.auto.target_ci < 1 and self.auto.max_repeats >= 2):
            raise UsageError("--target-ci must be in (0%, 100%) and --max-repeats >= 2")
        self.base.validate()

    def cells(self) -> list[Cell]:
        cells = []
        for s in self.strategies:
            counts = [1] if STRATEGIES[s].single_worker else self.workers
            cells += [Cell(s, w) for w in counts]
        return cells

    def slots(self) -> list[Slot]:
        """Interleaved: one run of every cell, then the next repeat of every cell, ..."""
        return [Slot(c, r) for r in range(self.repeats) for c in self.cells()]

    def config(self, cell: Cell, out: Path) -> RunConfig:
        """The validated config of one cell's runs.

        A strategy whose framework is missing still gets its config: its runs will fail with the
        install hint, and the report shows that reason.
        """
        # --compression applies to the strategies that implement it; the others (the baselines
        # among them) run exact, and their records say so.
        compression = (self.base.compression
                       if self.base.compression in STRATEGIES[cell.strategy].compressions
                       else "none")
        # Likewise the options only some strategies use (--overlap, --sync-every, ...): the
        # others run with the defaults, which is what they did with the option set.
        defaults = RunConfig()
        unused = {f: getattr(defaults, f) for f in foreign_options(cell.strategy, self.base)}
        cfg = replace(self.base, strategy=cell.strategy, workers=cell.workers, out=str(out),
                      progress=False, compression=compression, **unused)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=list))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        auto = raw.get("auto")
        return cls(list(raw["strategies"]), [int(w) for w in raw["workers"]],
                   int(raw["repeats"]), RunConfig.from_dict(raw["base"]),
                   AutoRepeats(**auto) if auto else None, int(raw.get("rerun_contended", 0)),
                   str(raw.get("worker_start", "exec")))


# The compare command that redoes a plan into a folder, every setting spelled out; the CLI
# writes it, since it knows the flags.
Equivalent = Callable[[Plan, Path], str]


@dataclass(frozen=True)
class CompareRequest:
    """Everything `distbench compare` was asked for, already parsed."""

    base: RunConfig  # the settings every run shares (strategy, workers and out are per cell)
    equivalent: Equivalent
    strategies: list[str] | None = None  # None: every installed strategy
    workers: list[int] = field(default_factory=lambda: [1, 2])
    repeats: int = 3
    auto: AutoRepeats | None = None  # `--repeats auto`: rounds added until the intervals converge
    rerun_contended: int = 0  # run a contended run again, at most this often
    worker_start: str = "fork"  # "fork": from a fork server per framework; "exec": fresh
    out: Path | None = None  # None: results/<UTC timestamp>/
    resume: Path | None = None  # continue the study saved there; the settings above are unused
    no_baseline: bool = False  # do not add single / tf-single when they are not listed
    save_best: bool = False  # every run saves its model; the most accurate ok one is kept
    progress: bool = True  # the live display
    command: str | None = None  # the command as typed, for compare.json


# --------------------------------------------------------------------------- building the plan


def with_baselines(strategies: list[str], available: Sequence[str]) -> list[str]:
    """Put each framework's baseline first when a strategy of that framework is in the study."""
    frameworks = {STRATEGIES[s].framework for s in strategies}
    bases = [b for f, b in framework_baselines().items() if f in frameworks]
    bases = [b for b in bases if b in available or b in strategies]
    return bases + [s for s in strategies if s not in bases]


def make_plan(request: CompareRequest) -> Plan:
    """The plan of a new study: the strategies asked for (or every installed one), baselines
    added, and the shared settings."""
    from distbench.strategies import available_strategies

    available = available_strategies()
    if request.strategies in (None, ["all"]):
        strategies = available_strategies(default_only=request.strategies is None)
    else:
        strategies = list(request.strategies)
    check_strategies(strategies)
    if not request.no_baseline:
        strategies = with_baselines(strategies, available)
    plan = Plan(strategies, sorted(set(request.workers)), request.repeats,
                replace(request.base, save_model=request.save_best), request.auto,
                request.rerun_contended, request.worker_start)
    plan.validate()
    return plan


def load_plan(out: Path) -> tuple[Plan, dict[str, Any]]:
    """The plan and the history saved in DIR/compare.json, or a one-line error."""
    path = out / COMPARE_FILE
    if not path.is_file():
        raise UsageError(f"cannot resume {out}: it has no {COMPARE_FILE} (not a directory "
                         "written by distbench compare)")
    try:
        meta = json.loads(path.read_text())
        plan = Plan.from_dict(meta["plan"])
        meta["sessions"] = [dict(s) for s in meta.get("sessions", [])]
        plan.validate()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"cannot resume {out}: {path} is not a study plan this distbench can "
                         f"read ({type(exc).__name__}: {exc})") from None
    return plan, meta


def cell_records(out: Path, configs: dict[Cell, RunConfig],
                 replaced: set[str]) -> dict[Cell, list[dict[str, Any]]]:
    """The answered runs (ok, or a genuine failure) of each cell of this study, in run order;
    runs that compare replaced (contended, run again) are left out."""
    path = out / RUNS_FILE
    found: dict[Cell, list[dict[str, Any]]] = {cell: [] for cell in configs}
    if not path.exists():
        return found
    host = socket.gethostname()
    setups = {cell: setup_of_config(cfg, host) for cell, cfg in configs.items()}
    for r in load_records(path):
        cell = Cell(str(r.get("strategy")), int(r.get("workers") or 1))
        if (cell in setups and setup_of(r) == setups[cell] and is_complete(r)
                and str(r.get("run_id")) not in replaced):
            found[cell].append(r)
    return found


def completed_counts(out: Path, plan: Plan, configs: dict[Cell, RunConfig],
                     replaced: set[str] = frozenset()) -> Counter[Cell]:  # type: ignore[assignment]
    """How many runs of each cell already have an answer (ok, or a genuine failure)."""
    return Counter({cell: len(rs) for cell, rs in cell_records(out, configs, replaced).items()})


def pending_slots(plan: Plan, done: Counter[Cell]) -> list[Slot]:
    left = Counter(done)
    pending = []
    for slot in plan.slots():
        if left[slot.cell] > 0:
            left[slot.cell] -= 1
        else:
            pending.append(slot)
    return pending


def config_path(out: Path, cell: Cell) -> Path:
    return out / CONFIGS_DIR / f"{cell.strategy}-w{cell.workers}.json"


def write_configs(out: Path, configs: dict[Cell, RunConfig]) -> None:
    """One config file per cell: what each of its runs is started with (`run --config`)."""
    (out / CONFIGS_DIR).mkdir(parents=True, exist_ok=True)
    for cell, cfg in configs.items():
        config_path(out, cell).write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True)
                                          + "\n")


# --------------------------------------------------------------------------- running one cell


@dataclass
class SlotResult:
    slot: Slot
    record: dict[str, Any]
    wall_s: float


def reason_from_log(log: Path, code: int | None) -> str:
    """One line: the child's `distbench: error:` line, else its last line, else its exit."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    error = last_error(lines)
    if error:
        return error
    last = f": {lines[-1]}" if lines else ""
    if code is not None and code < 0:
        return f"run process killed by {signal.Signals(-code).name}{last}"
    return f"run process exited with code {code}{last}"


class CellRunner:
    """Runs one slot in a fresh process and makes sure it leaves exactly one answer."""

    def __init__(self, plan: Plan, out: Path, configs: dict[Cell, RunConfig],
                 warm: WarmPool | None = None) -> None:
        self.plan, self.out, self.configs, self.warm = plan, out, configs, warm
        self.logs = out / LOGS_DIR
        self.started = 0

    def command(self, slot: Slot) -> list[str]:
        """`distbench run` of the cell's config file (see `write_configs`), in a new process."""
        return [sys.executable, "-m", "distbench", "run", "--config",
                str(config_path(self.out, slot.cell))]

    def timeout(self) -> float:
        given = self.plan.base.timeout
        return float(given) + STOP_GRACE_S if given else CELL_TIMEOUT_S

    def run(self, slot: Slot) -> SlotResult:
        self.started += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        env = None
        if self.warm is not None and missing_framework(slot.cell.strategy) is None:
            # Outside the run's wall time: the framework's import, once per study.
            self.warm.ensure(STRATEGIES[slot.cell.strategy].framework.value)
            env = {**os.environ, **self.warm.env}
        log = self.logs / f"{self.started:03d}-{slot.cell.strategy}-w{slot.cell.workers}-" \
                          f"r{slot.repeat + 1}.log"
        before = len(_records(self.out))
        start = time.monotonic()
        with log.open("wb") as fh:
            # Its own session (a Ctrl-C reaches it only through `stop`), and it dies with this
            # process, even by SIGKILL: its workers die with it in turn.
            proc = subprocess.Popen(self.command(slot), env=env, stdin=subprocess.DEVNULL,
                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=die_with_parent)
        try:
            code = proc.wait(timeout=self.timeout())
            timed_out = False
        except subprocess.TimeoutExpired:
            code, timed_out = stop(proc), True
        except KeyboardInterrupt:
            stop(proc)
            raise
        wall = time.monotonic() - start
        new = _records(self.out)[before:]
        answers = [r for r in new if is_complete(r)]
        if answers:
            return SlotResult(slot, answers[-1], wall)
        reason = (f"no result after {self.timeout():g} s: stopped by distbench compare"
                  if timed_out else reason_from_log(log, code))
        return SlotResult(slot, self.record_failure(slot, reason), wall)

    def record_failure(self, slot: Slot, reason: str) -> dict[str, Any]:
        """The run died without an answer (crash, kill, bad environment): record it for it."""
        from distbench.results.records import make_record

        record = make_record(self.configs[slot.cell], "failed", reason)
        append_record(self.out, record)
        return record


def _records(out: Path) -> list[dict[str, Any]]:
    path = out / RUNS_FILE
    return load_records(path) if path.exists() else []


def stop(proc: subprocess.Popen[bytes]) -> int:
    """Ctrl-C the run (it stops its workers and records itself), then kill it if it hangs."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=STOP_GRACE_S)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


# --------------------------------------------------------------------------- the live display


def count(n: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class StudyProgress:
    """Runs done / total, the current cell and an ETA from the runs measured so far."""

    def __init__(self, console: Console, plan: Plan, done: int, live: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console, self.plan = console, plan
        self.total = len(plan.slots())
        self.done = done
        self.walls: dict[Cell, list[float]] = {}
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console, refresh_per_second=2, disable=not live,
        )
        self.task = self.bar.add_task("starting", total=self.total, completed=done, eta="…")

    def __enter__(self) -> StudyProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def eta(self, remaining: Sequence[Slot]) -> str:
        """Sum of the expected durations: a cell's own mean once measured, else the overall."""
        every = [w for ws in self.walls.values() for w in ws]
        if not remaining:
            return _hms(0)
        if not every:
            return "after the first run"
        overall = sum(every) / len(every)
        left = sum(sum(self.walls[s.cell]) / len(self.walls[s.cell]) if s.cell in self.walls
                   else overall for s in remaining)
        return _hms(left)

    def _label(self, slot: Slot) -> str:
        return f"{slot.cell.label()} run {slot.repeat + 1}/{self.plan.repeats}"

    def start(self, slot: Slot, remaining: Sequence[Slot]) -> None:
        self.bar.update(self.task, description=self._label(slot), eta=self.eta(remaining))

    def finish(self, result: SlotResult, remaining: Sequence[Slot]) -> None:
        from distbench.report.tables import fmt_pct, fmt_rate, fmt_s

        self.walls.setdefault(result.slot.cell, []).append(result.wall_s)
        self.done += 1
        r = result.record
        head = f"{self.done}/{self.total} {self._label(result.slot)}"
        if r.get("status") == "ok":
            line = (f"[green]✓[/green] {head}: train {fmt_s(r.get('train_s'))} s, "
                    f"{fmt_rate(r.get('samples_per_s'))} samples/s, test acc "
                    f"{fmt_pct(r.get('test_accuracy'))} ({result.wall_s:.1f} s in all)")
        else:
            line = f"[red]✗[/red] {head} failed: {escape(str(r.get('error')))}"
        self.bar.console.print(line, highlight=False)
        self.bar.update(self.task, completed=self.done, eta=self.eta(remaining))


# --------------------------------------------------------------------------- the study


@dataclass
class Study:
    """A study being run: its folder, its plan, its history (compare.json) and the configs."""

    out: Path
    plan: Plan
    meta: dict[str, Any]
    equivalent: Equivalent
    configs: dict[Cell, RunConfig]

    def save(self) -> None:
        """compare.json: the plan (for --resume) and every command that added runs (for the
        report)."""
        self.out.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "plan": self.plan.to_dict(),
                "equivalent": self.equivalent(self.plan, self.out)}
        tmp = self.out / f".{COMPARE_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.out / COMPARE_FILE)


def open_study(request: CompareRequest) -> Study:
    """The saved study to resume, or a new one in a folder that holds no records yet."""
    from distbench.results.records import check_out_dir, default_out_dir

    if request.resume:
        out = request.resume
        if request.out and request.out.resolve() != out.resolve():
            raise UsageError("--resume DIR writes into DIR; drop --out or give the same folder")
        plan, meta = load_plan(out)
    else:
        plan, meta = make_plan(request), {}
        out = check_out_dir(request.out or Path(default_out_dir()))
        if (out / RUNS_FILE).exists():
            raise UsageError(f"{out} already holds {RUNS_FILE}: continue that study with "
                             f"--resume {out}, or choose another --out")
    configs = {cell: plan.config(cell, out) for cell in plan.cells()}
    return Study(out, plan, meta, request.equivalent, configs)


def is_contended(record: dict[str, Any]) -> bool:
    return bool((record.get("machine_state") or {}).get("contended"))


def run_slot(console: Console, study: Study, runner: CellRunner, slot: Slot) -> SlotResult:
    """One slot; a contended run is run again, at most `--rerun-contended` times, and the
    replaced run's id goes into compare.json (its record stays in runs.jsonl)."""
    result = runner.run(slot)
    for _ in range(study.plan.rerun_contended):
        if not is_contended(result.record):
            break
        study.meta.setdefault("replaced_runs", []).append(result.record.get("run_id"))
        study.save()
        console.print(f"{slot.cell.label()}: run {result.record.get('run_id')} was contended "
                      "(other processes used the cores): running it again", highlight=False)
        again = runner.run(slot)
        result = SlotResult(slot, again.record, result.wall_s + again.wall_s)
    return result


def run_pending(console: Console, study: Study, pending: list[Slot], warm: WarmPool | None,
                live: bool) -> tuple[list[float], bool]:
    """Run the slots in order; the wall time of each finished run, and whether Ctrl-C came."""
    runner = CellRunner(study.plan, study.out, study.configs, warm)
    walls: list[float] = []
    try:
        with StudyProgress(console, study.plan, len(study.plan.slots()) - len(pending),
                           live=live) as progress, stop_on_termination():
            for i, slot in enumerate(pending):
                progress.start(slot, pending[i:])
                result = run_slot(progress.bar.console, study, runner, slot)
                if study.plan.base.save_model:
                    keep_best(study.out, result.record)
                walls.append(result.wall_s)
                progress.finish(result, pending[i + 1:])
    except KeyboardInterrupt:
        return walls, True
    return walls, False


def replaced(study: Study) -> set[str]:
    return {str(r) for r in study.meta.get("replaced_runs", [])}


def next_round(console: Console, study: Study, elapsed_s: float, round_s: float) -> bool:
    """`--repeats auto`: plan one more round, or record why not (False)."""
    auto = study.plan.auto
    if auto is None:
        return False
    runs = cell_records(study.out, study.configs, replaced(study))
    times = {cell: [float(r["train_s"]) for r in rs if r.get("status") == "ok"
                    and r.get("train_s") is not None] for cell, rs in runs.items()}
    cell, width = widest(times)
    label = cell.label() if isinstance(cell, Cell) else "no cell"
    console.print(f"round {study.plan.repeats}: widest 95% interval ±{width:.1%} ({label}); "
                  f"target ±{auto.target_ci:.1%}", highlight=False)
    reason = stop_reason(auto, study.plan.repeats, width, elapsed_s, round_s)
    if reason:
        study.meta["auto"] = {"rounds": study.plan.repeats, "stopped": reason,
                              "widest": width, "widest_cell": label}
        console.print(f"adaptive repeats stop: {reason}", highlight=False)
        return False
    study.plan.repeats += 1
    study.save()
    return True


def run_rounds(console: Console, study: Study, warm: WarmPool | None, live: bool
               ) -> tuple[list[float], bool]:
    """The planned rounds, then (with `--repeats auto`) more until the intervals converge."""
    start = time.monotonic()
    walls: list[float] = []
    while True:
        done = completed_counts(study.out, study.plan, study.configs, replaced(study))
        pending = pending_slots(study.plan, done)
        before = time.monotonic()
        more, interrupted = run_pending(console, study, pending, warm, live)
        walls += more
        if interrupted:
            return walls, True
        round_s = time.monotonic() - before if pending else 0.0
        if not next_round(console, study, time.monotonic() - start, round_s):
            return walls, False


def report_study(console: Console, study: Study, session: dict[str, Any],
                 walls: list[float]) -> None:
    """Tables, plots and report.html of the whole folder, and what compare itself cost."""
    from distbench.report import build_report
    from distbench.report.tables import print_terminal

    report_start = time.monotonic()
    report = build_report([study.out], study.out)
    session["report_s"] = time.monotonic() - report_start
    study.save()
    print_terminal(report.study, console, notes=report.notes)
    for skipped in report.skipped:
        console.print(f"skipped {escape(skipped)}")
    console.print("wrote " + ", ".join(str(p) for p in report.files))
    if study.plan.base.save_model:
        console.print(escape(describe_best(study.out)))
    if walls:
        added = session["wall_s"] - sum(walls)
        servers = session.get("fork_server_s") or {}
        imports = (f", {sum(servers.values()):.1f} s of it importing "
                   f"{' and '.join(sorted(servers))} once for every worker (--worker-start fork)"
                   if servers else "")
        console.print(f"{count(len(walls), 'run')} took {sum(walls):.1f} s; compare added "
                      f"{added:.2f} s ({added / sum(walls):.2%}{imports}), and "
                      f"{session['report_s']:.1f} s for the report")


def warn_noise(console: Console, noise: dict[str, Any], when: str) -> None:
    warning = noise_warning(noise["cv"])
    if warning:
        console.print(f"{when}: {warning}", highlight=False)


def warn_contended(console: Console, study: Study) -> None:
    """The runs that shared their cores with other processes, and what to do about it."""
    runs = cell_records(study.out, study.configs, replaced(study))
    busy = [f"{cell.label()} ({sum(map(is_contended, rs))} of {len(rs)})"
            for cell, rs in runs.items() if any(map(is_contended, rs))]
    if busy:
        console.print(f"WARNING: contended runs (other processes used more than a tenth of the "
                      f"cores while they were timed): {', '.join(busy)}. Their times include "
                      "that load; rerun on a quiet machine, or with --rerun-contended N.",
                      highlight=False)


def run_compare(request: CompareRequest) -> int:
    """The whole `distbench compare`: plan, run what is missing, report."""
    from distbench.strategies import missing_framework

    console = Console(highlight=False)
    study = open_study(request)
    plan, out = study.plan, study.out
    # A user dataset is checked and decoded once, before the first run writes anything.
    prepare_dataset(plan.base.data, plan.base.model.image_size)
    for name in plan.strategies:
        hint = missing_framework(name)
        if hint:
            console.print(f"note: {escape(hint)}; its runs will be recorded as failed")
    pending = pending_slots(plan, completed_counts(out, plan, study.configs, replaced(study)))
    total = len(plan.slots())
    session: dict[str, Any] = {"command": request.command or request.equivalent(plan, out),
                               "started_at": utc_now(), "noise_before": measure_noise()}
    warn_noise(console, session["noise_before"], "before the runs")
    study.meta["sessions"] = [*study.meta.get("sessions", []), session]
    study.save()
    write_configs(out, study.configs)
    console.print(f"distbench compare: {count(len(plan.cells()), 'cell')} × "
                  f"{count(plan.repeats, 'repeat')} = {count(total, 'run')}, "
                  f"{total - len(pending)} already done; results in {out}")

    start = time.monotonic()
    # One fork server per framework for the whole study (--worker-start fork), closed with it.
    with (warm_pool(run_dir(), out / LOGS_DIR) if plan.worker_start == "fork"
          else contextlib.nullcontext()) as warm:
        walls, interrupted = run_rounds(console, study, warm, live=request.progress)
    session.update(finished_at=utc_now(), wall_s=time.monotonic() - start, runs=len(walls),
                   runs_wall_s=sum(walls), interrupted=interrupted,
                   worker_start=plan.worker_start,
                   fork_server_s=warm.start_s if warm is not None else None,
                   noise_after=measure_noise())
    warn_noise(console, session["noise_after"], "after the runs")
    total = len(plan.slots())
    study.save()
    if interrupted:
        done = sum(completed_counts(out, plan, study.configs, replaced(study)).values())
        console.print(f"interrupted: {done} of {total} runs done, every finished record is in "
                      f"{out / RUNS_FILE}.\ncontinue with: distbench compare --resume {out}\n"
                      f"or see the partial results with: distbench report {out}")
        return 130
    report_study(console, study, session, walls)
    warn_contended(console, study)
    return 0
