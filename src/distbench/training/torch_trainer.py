"""The one PyTorch training loop. Every PyTorch strategy runs through it; none copies it.

Command: distbench run --strategy single --dataset mnist-5k --model mlp-128 --epochs 1

Fairness rules it enforces (DESIGN §3): same seed and initial weights, one global permutation per
epoch split into strided shards, the loss normalised by the global step's sample count (so the
averaged gradient equals the single-process one), warm-up steps run and then undone before the
clock starts, evaluation outside the timed region, and train time = the slowest rank's.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from distbench.core.config import RunConfig
from distbench.data import Dataset, step_batches
from distbench.data.sharding import describe_sharding
from distbench.models.checkpoint import save_checkpoint
from distbench.models.torch_models import build_model
from distbench.strategies import CommMeasure
from distbench.strategies.base import Strategy
from distbench.system.timing import clock, median, rank_row, summarize_ranks
from distbench.training.progress import TrainProgress

EVAL_BATCH = 1024


@dataclass
class Tensors:
    """The dataset as tensors on the training device, converted once."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @classmethod
    def of(cls, data: Dataset, device: torch.device) -> Tensors:
        return cls(
            *(
                torch.from_numpy(a).to(device)
                for a in (data.train_x, data.train_y, data.test_x, data.test_y)
            )
        )


def make_optimizer(cfg: RunConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Trainer:
    """Holds what the steps share; `run()` is the whole measured training."""

    def __init__(self, cfg: RunConfig, strategy: Strategy, data: Dataset) -> None:
        self.cfg, self.strategy, self.data = cfg, strategy, data
        torch.set_num_threads(cfg.threads_per_worker or torch.get_num_threads())
        self.device = strategy.device()
        self.tensors = Tensors.of(data, self.device)
        self.net = build_model(
            cfg.model, data.input_shape, data.num_classes, data.mean, data.std, seed=cfg.seed
        ).to(self.device)
        self.model = strategy.prepare(self.net)
        self.compile_note: str | None = None
        self.optimizer = make_optimizer(cfg, self.net.parameters())
        self.n_train = len(data.train_y)
        self.running_stats = [
            b
            for m in self.net.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            for b in (m.running_mean, m.running_var)
            if b is not None
        ]

    # ---- one step, shared by warm-up, training and calibration
    def batches(self, epoch: int):
        s = self.strategy
        for idx, count in step_batches(
            self.n_train, self.cfg.seed, epoch, s.rank, s.world, self.cfg.global_batch
        ):
            index = torch.from_numpy(idx).to(self.device)
            yield self.tensors.train_x[index], self.tensors.train_y[index], count

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, count: int) -> torch.Tensor:
        loss_sum = F.cross_entropy(self.model(x), y, reduction="sum")
        (loss_sum * (self.strategy.world / count)).backward()
        return loss_sum.detach()

    def step(self, x: torch.Tensor, y: torch.Tensor, count: int, step: int) -> torch.Tensor:
        loss_sum = self.forward_backward(x, y, count)
        self.strategy.sync_gradients(self.model)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.strategy.after_step(self.model, self.optimizer, step)
        return loss_sum

    def sync_device(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ---- phases
    def warm_up(self) -> None:
        """Run the first steps to warm caches, allocators and compilers, then undo them."""
        steps = max(self.cfg.warmup_steps, 1 if self.cfg.model.compile else 0)
        if steps == 0:
            return
        weights = copy.deepcopy(self.net.state_dict())
        opt_state = copy.deepcopy(self.optimizer.state_dict())
        for i, (x, y, count) in enumerate(self.batches(epoch=0)):
            if i == steps:
                break
            if i == 0 and self.cfg.model.compile:
                self.compile_first_step(x, y, count)
            else:
                self.step(x, y, count, i)
        self.sync_device()
        self.net.load_state_dict(weights)
        self.optimizer.load_state_dict(opt_state)
        self.optimizer.zero_grad(set_to_none=True)
        self.strategy.reset()

    def compile_first_step(self, x: torch.Tensor, y: torch.Tensor, count: int) -> None:
        """torch.compile fails lazily, at the first call: try it there, fall back to eager."""
        eager = self.model
        # dynamic: the last, smaller step of an epoch must not recompile inside the clock.
        self.model = torch.compile(eager, dynamic=True)
        try:
            self.step(x, y, count, 0)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "run eager"
            self.model = eager
            self.optimizer.zero_grad(set_to_none=True)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.compile_note = (
                f"--compile is unavailable here ({type(exc).__name__}: "
                f"{reason[:200]}); this run is eager"
            )
            self.step(x, y, count, 0)

    def evaluate(self) -> tuple[float, float]:
        """(accuracy, mean loss) on the whole test set, each rank scoring a strided part."""
        s, t = self.strategy, self.tensors
        self.net.eval()
        loss = correct = 0.0
        part = torch.arange(s.rank, len(t.test_y), s.world, device=self.device)
        with torch.no_grad():
            for start in range(0, len(part), EVAL_BATCH):
                index = part[start : start + EVAL_BATCH]
                logits = self.net(t.test_x[index])
                loss += F.cross_entropy(logits, t.test_y[index], reduction="sum").item()
                correct += (logits.argmax(1) == t.test_y[index]).sum().item()
        self.net.train()
        loss, correct, count = s.all_reduce_sum([loss, correct, float(len(part))])
        return correct / count, loss / count

    def calibrate(self) -> float | None:
        """Per-step sync time as (synchronised - unsynchronised) forward+backward, for strategies
        whose collectives run inside a wrapper we cannot time (DDP). Uses epoch-0 batches and
        leaves gradients cleared; the weights do not change (no optimizer step), and buffers that
        training-mode forwards update (BatchNorm statistics) are restored, so the checkpoint is
        the model that was evaluated."""
        if self.strategy.info.comm is not CommMeasure.CALIBRATION or not self.cfg.calibration_steps:
            return None
        buffers = [(b, b.clone()) for b in self.net.buffers()]
        synced, unsynced = [], []
        batches = self.batches(epoch=0)
        for _ in range(self.cfg.calibration_steps):
            try:
                x, y, count = next(batches)
            except StopIteration:
                batches = self.batches(epoch=0)
                x, y, count = next(batches)
            for times, ctx in (
                (synced, nullcontext()),
                (unsynced, self.strategy.unsynced(self.model)),
            ):
                self.strategy.barrier()
                start = clock()
                with ctx:
                    self.forward_backward(x, y, count)
                    self.strategy.sync_gradients(self.model)
                self.sync_device()
                times.append(clock() - start)
                self.optimizer.zero_grad(set_to_none=True)
        for buffer, saved in buffers:
            buffer.copy_(saved)
        return max(0.0, median(synced) - median(unsynced))

    def save_checkpoint(self, record: dict[str, Any]) -> Path:
        return save_checkpoint(self.net, self.cfg, self.data, record)

    def run(self) -> dict[str, Any]:
        cfg, s = self.cfg, self.strategy
        self.warm_up()
        # Dropout masks: reproducible, and different on every rank (as in one big batch).
        torch.manual_seed(cfg.seed + s.rank)
        progress = TrainProgress(
            enabled=cfg.progress and s.rank == 0,
            epochs=cfg.epochs,
            steps_per_epoch=-(-self.n_train // cfg.global_batch),
        )
        epoch_s: list[float] = []
        history: list[dict[str, Any]] = []
        step = 0
        with progress:
            for epoch in range(cfg.epochs):
                loss_total = torch.zeros((), device=self.device)
                s.barrier()
                start = clock()
                for i, (x, y, count) in enumerate(self.batches(epoch)):
                    loss_total += self.step(x, y, count, step)
                    step += 1
                    if progress.due(i):
                        progress.update(
                            epoch,
                            i + 1,
                            float(loss_total) / max(1, (i + 1) * len(x)),
                            (i + 1) * cfg.global_batch / (clock() - start),
                        )
                s.end_epoch(self.model, self.optimizer)
                if self.running_stats:
                    s.average_running_stats(self.running_stats)
                self.sync_device()
                epoch_s.append(clock() - start)
                train_loss = s.all_reduce_sum([float(loss_total)])[0] / self.n_train
                accuracy, test_loss = self.evaluate()
                history.append(
                    {
                        "epoch": epoch + 1,
                        "time_s": sum(epoch_s),
                        "train_loss": train_loss,
                        "test_accuracy": accuracy,
                        "test_loss": test_loss,
                    }
                )
                progress.end_epoch(epoch, train_loss, accuracy)
        step_sync = self.calibrate()
        return self.measurements(epoch_s, history, step, step_sync)

    def measurements(
        self,
        epoch_s: list[float],
        history: list[dict[str, Any]],
        steps: int,
        step_sync: float | None,
    ) -> dict[str, Any]:
        """Gather every rank's timings; the record keeps the slowest rank's train time."""
        s, cfg = self.strategy, self.cfg
        if step_sync is not None:
            comm: float | None = step_sync * steps
        else:  # --calibration-steps 0 leaves a calibrated share unmeasured, not zero
            comm = None if s.info.comm is CommMeasure.CALIBRATION else s.comm_s
        ranks = s.all_gather(rank_row(s.rank, torch.get_num_threads(), epoch_s, comm))
        return {
            **summarize_ranks(ranks, history, self.n_train, cfg.target_accuracy),
            "steps": steps,
            "grad_bytes": sum(p.numel() * p.element_size() for p in self.net.parameters()),
            "comm_method": s.comm_method,
            "compile_note": self.compile_note,
            "sharding": describe_sharding(self.n_train, cfg.global_batch),
        }


