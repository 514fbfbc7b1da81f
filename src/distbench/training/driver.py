"""The one measured training of a worker, for both frameworks: what a run is, written once.

Command: distbench run --strategy ddp --workers 2 --dataset mnist-5k --epochs 1

`EpochDriver.run()` is the whole of it, with the timing rules of DESIGN §3:

- warm-up: `--warmup-steps` real steps (at least one with `--compile`) warm caches, allocators
  and compilers, and are then undone, so the timed epochs start from the initial weights;
- `--compile`: every rank tries its compiled step once; the ranks then share their outcome, and
  if any rank failed to compile, all of them run without the compiler and the record's
  `compile_note` says why. Only a compiler's error counts as such a failure: anything else (a
  peer gone, a bug) fails the run;
- each epoch is timed from a barrier to the end of its last step (device work included);
  evaluation on the whole test set (each rank a strided part, summed) runs after the clock stops;
- train time is the slowest rank's, throughput global samples over it;
- strategies whose communication cannot be timed directly get it from calibration steps after
  training; the model is restored afterwards, so the checkpoint is the model that was evaluated.

A framework's trainer (`torch_trainer.Trainer`, `keras_trainer.KerasTrainer`) supplies only
what differs: its step and epoch, snapshot and restore, local evaluation, calibration timings,
and its extra record fields. This module imports neither framework.
"""

from __future__ import annotations

import gc
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, SupportsFloat

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError
from distbench.data import Dataset
from distbench.data.sharding import describe_sharding
from distbench.models.checkpoint import sidecar, write_checkpoint
from distbench.models.user import is_user_model, parse_spec, sha256_of
from distbench.strategies import CommMeasure
from distbench.strategies.role import WorkerRole
from distbench.system.contention import Sample, machine_state
from distbench.system.timing import clock, median, rank_row, summarize_ranks
from distbench.training.progress import StepHook, TrainProgress

EVAL_BATCH = 1024  # test samples per evaluation batch, both frameworks
ONE_WORKER = "none: one worker, nothing crosses a wire"


class DivergedError(DistbenchError):
    """The training loss left the finite numbers: the run's numbers would mean nothing."""


def check_finite(train_loss: float, epoch: int, lr: float) -> None:
    """Fail the run once an epoch's loss is NaN or infinite. The loss is the all-reduced one, so
    every rank fails at the same epoch and none is left waiting in a collective; checking once
    per epoch costs the timed loop nothing."""
    if not math.isfinite(train_loss):
        raise DivergedError(f"training diverged: the mean training loss of epoch {epoch + 1} is "
                            f"{train_loss} (try a smaller --lr than {lr:g})")


class Snapshot(Protocol):
    """The training state at one moment (weights, optimizer, RNG), to put back later."""

    def restore(self) -> None: ...


class EpochDriver(ABC):
    """A worker's measured training; subclasses set `cfg`, `strategy`, `data`, `n_train` and
    `compile_note` in their constructor and implement the framework's parts below."""

    cfg: RunConfig
    strategy: WorkerRole
    data: Dataset
    n_train: int
    compile_note: str | None

    # ---- the framework's parts
    @abstractmethod
    def snapshot(self) -> Snapshot:
        """Everything a step changes, to be restored after warm-up and calibration."""

    @abstractmethod
    def warm_up_steps(self, steps: int) -> None:
        """Run the first `steps` steps of epoch 0 (their effect is undone by the caller)."""

    @abstractmethod
    def try_compiled_step(self) -> None:
        """Switch to the compiled step and run it once (a compiler fails lazily, at the first
        call); where the framework can, without collectives (see `compile_together`)."""

    @abstractmethod
    def compile_failure(self, exc: Exception) -> str | None:
        """'Type: reason' when `exc` is the compiler's error, None for any other error."""

    @abstractmethod
    def fall_back(self, reason: str) -> str:
        """Leave the compiler for the rest of the run; returns the record's note."""

    @abstractmethod
    def epoch_input(self, epoch: int) -> Any:
        """What `train_epoch` consumes, made before the epoch's clock starts."""

    @abstractmethod
    def train_epoch(self, prepared: Any, hook: StepHook | None) -> SupportsFloat:
        """One timed epoch, device work finished; returns this rank's summed training loss."""

    @abstractmethod
    def local_evaluation(self) -> list[float]:
        """[summed loss, correct, count] on this rank's strided part of the test set."""

    @property
    @abstractmethod
    def calibrated(self) -> bool:
        """Whether the communication time comes from calibration steps (not timed directly)."""

    @abstractmethod
    def calibration_times(self, steps: int, snapshot: Snapshot) -> tuple[list[float], list[float]]:
        """Step times (synchronised, reference without synchronisation), `steps` each."""

    @abstractmethod
    def threads(self) -> int:
        """The compute threads this rank trained with."""

    def rank_fields(self) -> dict[str, Any]:
        """Extra facts each rank reports with its timings."""
        return {}

    @abstractmethod
    def param_count(self) -> int:
        """The model's parameters, whole (not this rank's shard)."""

    @abstractmethod
    def memory_fields(self) -> dict[str, Any]:
        """This rank's memory: `model_state_bytes` (parameters, gradients and optimizer state it
        holds, None if it never stepped) and `cuda_peak_mb` (None off CUDA)."""

    def record_fields(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        """The framework's own fields of the record, from every rank's row."""
        return {}

    @abstractmethod
    def before_timed_epochs(self) -> None:
        """After warm-up, before the first timed epoch."""

    @abstractmethod
    def gather_weights(self) -> None:
        """On every rank, before rank 0 saves: collect the whole model where it is sharded."""

    @abstractmethod
    def save_weights(self) -> tuple[Callable[[Path], None], dict[str, Any]]:
        """(a callable writing the weights file to a given path, the sidecar's extra keys)."""

    # ---- the run
    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.cfg.global_batch)

    def run(self) -> dict[str, Any]:
        """Warm up, train the timed epochs with evaluation after each, calibrate, measure."""
        cfg, s = self.cfg, self.strategy
        self.warm_up()
        self.before_timed_epochs()
        # Everything alive now (imports, data, model) outlives the run: frozen, the garbage
        # collector no longer walks it inside the clock, in an exec'd worker as in one forked
        # from an interpreter that froze its imports (`cli.forkserver`).
        gc.collect()
        gc.freeze()
        progress = TrainProgress(enabled=cfg.progress and s.rank == 0, epochs=cfg.epochs,
                                 steps_per_epoch=self.steps_per_epoch)
        epoch_s: list[float] = []
        history: list[dict[str, Any]] = []
        self.samples: list[Sample] = []
        with progress:
            for epoch in range(cfg.epochs):
                prepared = self.epoch_input(epoch)
                s.barrier()
                start = clock()
                if epoch == 0:
                    self.samples.append(Sample.now())
                local_loss = self.train_epoch(prepared, progress.hook(epoch, start,
                                                                      cfg.global_batch))
                epoch_s.append(clock() - start)
                if epoch == cfg.epochs - 1:
                    self.samples.append(Sample.now())
                train_loss = s.all_reduce_sum([float(local_loss)])[0] / self.n_train
                check_finite(train_loss, epoch, cfg.lr)
                accuracy, test_loss = self.evaluate()
                history.append({"epoch": epoch + 1, "time_s": sum(epoch_s),
                                "train_loss": train_loss, "test_accuracy": accuracy,
                                "test_loss": test_loss})
                progress.end_epoch(epoch, train_loss, accuracy)
        timed_comm_s = s.comm_s  # before calibration, whose synced steps a hook also times
        step_sync = self.calibrate()
        return self.measurements(epoch_s, history, step_sync, timed_comm_s)

    def warm_up(self) -> None:
        """Run the first steps (and the compile trial), then undo them."""
        steps = min(max(self.cfg.warmup_steps, 1 if self.cfg.model.compile else 0),
                    self.steps_per_epoch)
        if steps == 0:
            return
        snapshot = self.snapshot()
        if self.cfg.model.compile:
            self.compile_together()
            snapshot.restore()
        self.warm_up_steps(steps)
        snapshot.restore()
        self.strategy.reset()

    def compile_together(self) -> None:
        """Every rank tries the compiled step; if any failed to compile, all fall back.

        The ranks' outcomes cross with one all_gather. PyTorch's trial issues no collective, so a
        rank whose compiler fails leaves no peer waiting inside one; a TF step cannot leave its
        collectives out, but XLA fails while compiling, before they run."""
        reason = None
        try:
            self.try_compiled_step()
        except Exception as exc:
            reason = self.compile_failure(exc)
            if reason is None:
                raise
        reasons = self.strategy.all_gather(reason)
        failed = [(rank, why) for rank, why in enumerate(reasons) if why is not None]
        if failed:
            rank, why = failed[0]
            self.compile_note = self.fall_back(why if len(reasons) == 1 else f"rank {rank}: {why}")

    def evaluate(self) -> tuple[float, float]:
        """(accuracy, mean loss) on the whole test set."""
        loss, correct, count = self.strategy.all_reduce_sum(self.local_evaluation())
        return correct / count, loss / count

    def calibrate(self) -> float | None:
        """Per-step sync time: median synchronised step minus median reference step; None where
        the communication is timed directly or `--calibration-steps` is 0."""
        if not self.calibrated or not self.cfg.calibration_steps:
            return None
        snapshot = self.snapshot()
        synced, reference = self.calibration_times(self.cfg.calibration_steps, snapshot)
        snapshot.restore()
        return max(0.0, median(synced) - median(reference))

    def measurements(self, epoch_s: list[float], history: list[dict[str, Any]],
                     step_sync: float | None, timed_comm_s: float) -> dict[str, Any]:
        """Gather every rank's timings; the record keeps the slowest rank's train time."""
        s, cfg = self.strategy, self.cfg
        steps = self.steps_per_epoch * cfg.epochs
        alone = s.world == 1 and not self.calibrated  # one worker, one replica
        hooked = s.info.comm is CommMeasure.HOOK
        calibrated_s = None if step_sync is None else step_sync * steps
        if hooked and not alone:
            comm: float | None = timed_comm_s
        elif calibrated_s is not None:
            comm = calibrated_s
        elif alone:  # what a one-rank collective costs is not communication
            comm = 0.0
        else:  # --calibration-steps 0 leaves a calibrated share unmeasured, not zero
            comm = None if self.calibrated else timed_comm_s
        start, end = self.samples
        ranks = s.all_gather({**rank_row(s.rank, self.threads(), epoch_s, comm),
                              "own_cpu_s": end.own - start.own, **self.memory_fields(),
                              **self.rank_fields()})
        host = ranks[s.rank]["host"]
        own = sum(r["own_cpu_s"] for r in ranks if r["host"] == host)
        return {
            "machine_state": machine_state(start, end, own, os.cpu_count() or 1,
                                           cfg.contention_threshold),
            **summarize_ranks(ranks, history, self.n_train, cfg.target_accuracy),
            "steps": steps,
            "comm_method": ONE_WORKER if alone else s.comm_method,
            # A hook's timing cross-checked by calibration (rank 0's estimate), where both ran.
            "comm_s_calibrated": calibrated_s if hooked else None,
            "compile_note": self.compile_note,
            "sharding": describe_sharding(self.n_train, cfg.global_batch),
            "compression": cfg.compression,
            "exact": s.info.exact(cfg.compression),
            "model_state_bytes": [r["model_state_bytes"] for r in ranks],
            "cuda_peak_mb": [r["cuda_peak_mb"] for r in ranks],
            **workload(cfg, self.data, self.param_count()),
            **self.record_fields(ranks),
        }

    def save_checkpoint(self, record: dict[str, Any]) -> Path:
        """The weights file and `model.json` in `--out` (rank 0, after the record is made)."""
        save, extra = self.save_weights()
        data = self.data
        meta = sidecar(self.cfg, record, self.strategy.info.framework.value,
                       classes=data.classes, input_shape=data.input_shape, mean=data.mean,
                       std=data.std)
        return write_checkpoint(self.cfg.out or ".", {**meta, **extra}, save)


def workload(cfg: RunConfig, data: Dataset, params: int) -> dict[str, Any]:
    """What was trained on what, so that a report can tell two users' workloads apart; a user
    model's file is fingerprinted, as its code decides what the numbers mean."""
    return {
        "model_params": params,
        "model_sha256": sha256_of(parse_spec(cfg.model.name))
        if is_user_model(cfg.model.name) else None,
        "input_shape": list(data.input_shape),
        "classes": len(data.classes),
        "train_samples": len(data.train_y),
        "test_samples": len(data.test_y),
    }
