"""The PyTorch side of the one training driver (`driver.py`). Every PyTorch strategy runs
through it; none copies it.

Command: distbench run --strategy single --dataset mnist-5k --model mlp-128 --epochs 1

Fairness rules it adds to the driver's (DESIGN §3): same seed and initial weights, one global
permutation per epoch split into strided shards, and the loss normalised by the global step's
sample count, so the averaged gradient equals the single-process one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save as safetensors_bytes

from distbench.core.config import RunConfig
from distbench.data import Dataset, shard_indices, step_slices
from distbench.models.torch_models import build_model
from distbench.strategies import CommMeasure
from distbench.strategies.base import Strategy
from distbench.strategies.wire import wire_bytes
from distbench.system.timing import clock
from distbench.training.driver import EVAL_BATCH, EpochDriver
from distbench.training.fused_update import adam_update
from distbench.training.progress import StepHook

Batch = tuple[torch.Tensor, torch.Tensor, int]  # this rank's images, labels; the step's samples


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


def make_optimizer(cfg: RunConfig, params: Any, strategy: Strategy) -> torch.optim.Optimizer:
    """The configured optimizer, built by the strategy (which may shard its state).

    `--optimizer-impl foreach|fused` asks torch for that implementation (fused runs one kernel
    over all parameters, on CPU too), default leaves torch's own choice, auto picks per
    optimizer (`core.config.AUTO_OPTIMIZER_IMPL`)."""
    impl = {"foreach": {"foreach": True}, "fused": {"fused": True}}.get(cfg.optimizer_kernel, {})
    if cfg.optimizer == "sgd":
        options = {"lr": cfg.lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
                   **impl}
        return strategy.build_optimizer(torch.optim.SGD, params, options)
    options = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, **impl}
    return strategy.build_optimizer(torch.optim.Adam, params, options)


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """The part of `t` this rank stores: a sharded DTensor's local shard, else `t`."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) else t


def storage_bytes(tensors: Iterable[Any]) -> int:
    """Bytes of the distinct storages behind `tensors` (non-tensors skipped): views of one
    buffer, such as DDP's gradient bucket views, count once."""
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            storage = local_tensor(t).untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def compile_errors() -> tuple[type[Exception], ...]:
    """The errors that mean "the compiler failed" (torch.compile fails lazily, at the first
    call): every TorchDynamo error (BackendCompilerFailed and InductorError among them,
    Unsupported, ...), and Inductor's own that can escape unwrapped from a backward compiled
    lazily (no or a broken C++ compiler, an operator it cannot lower). Imported on demand: only
    a `--compile` run has loaded the compiler."""
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor.exc import CppCompileError, InvalidCxxCompiler, OperatorIssue

    return (TorchDynamoException, CppCompileError, InvalidCxxCompiler, OperatorIssue)


class ModuleSnapshot:
    """Weights, buffers and optimizer state, copied; `restore` also clears the gradients.

    Each rank copies what it holds: sharded parameters as their shards, and of a sharded
    optimizer only its own part (`Strategy.local_optimizer`), so no snapshot gathers.

    `in_place`: the optimizer's state tensors keep their identity, as a compiled optimizer step
    needs (new ones would recompile it inside the clock). A parameter without state in the
    snapshot gets its state zeroed, which is the state Adam starts from and, for SGD without
    dampening, gives its first step exactly (0 * momentum + gradient)."""

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 local: torch.optim.Optimizer, strategy: Strategy,
                 in_place: Callable[[], bool] = lambda: False) -> None:
        self.net, self.optimizer, self.local = net, optimizer, local
        self.strategy, self.in_place = strategy, in_place
        self.weights = copy.deepcopy(net.state_dict())
        self.optimizer_state = copy.deepcopy(local.state_dict())

    def restore(self) -> None:
        self.net.load_state_dict(self.weights)
        if self.in_place():  # asked at each restore: the compile trial comes after the copy
            self.restore_optimizer_in_place()
        else:
            self.local.load_state_dict(self.optimizer_state)
        self.strategy.zero_grad(self.optimizer)

    def restore_optimizer_in_place(self) -> None:
        saved = self.optimizer_state["state"]
        params = [p for group in self.local.param_groups for p in group["params"]]
        for index, param in enumerate(params):
            for key, value in self.local.state.get(param, {}).items():
                if isinstance(value, torch.Tensor):
                    before = saved.get(index, {}).get(key)
                    if before is None:
                        value.zero_()
                    else:
                        value.copy_(before)


class Trainer(EpochDriver):
    """The PyTorch step, epoch, evaluation and calibration; `run()` is the driver's."""

    strategy: Strategy

    def __init__(self, cfg: RunConfig, strategy: Strategy, data: Dataset) -> None:
        self.cfg, self.strategy, self.data = cfg, strategy, data
        torch.set_num_threads(cfg.threads_per_worker or torch.get_num_threads())
        self.device = strategy.device()
        self.tensors = Tensors.of(data, self.device)
        self.net = build_model(
            cfg.model, data.input_shape, data.num_classes, data.mean, data.std, seed=cfg.seed
        ).to(self.device)
        self.wrapped = strategy.prepare(self.net)  # what the strategy trains (DDP's wrapper)
        self.model = self.wrapped  # what the steps call: `wrapped`, or its compiled form
        self.compile_note: str | None = None
        self.optimizer = make_optimizer(cfg, self.net.parameters(), strategy)
        # The fused kernel called directly, `optimizer.step`, or its compiled form.
        self.optimizer_step: Callable[[], Any] = adam_update(self.optimizer)
        self.optimizer_compiled = False
        self.state_bytes: int | None = None  # model state this rank holds, after a step
        self.n_train = len(data.train_y)
        self.steps_done = 0  # timed steps, across epochs (param-avg syncs every K of them)
        self.running_stats = [
            b
            for m in self.net.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            for b in (m.running_mean, m.running_var)
            if b is not None
        ]

    # ---- one step, shared by warm-up, training and calibration
    def batches(self, epoch: int) -> Iterator[Batch]:
        s = self.strategy
        shard = torch.from_numpy(shard_indices(self.n_train, self.cfg.seed, epoch, s.rank,
                                               s.world)).to(self.device)
        x, y = self.tensors.train_x, self.tensors.train_y
        for index, count in step_slices(shard, self.n_train, s.world, self.cfg.global_batch):
            # index_select, not x[index]: the same rows, gathered 3-5x faster (6 against 20 us
            # for 32 Fashion-MNIST images on this project's 2-core VM).
            yield x.index_select(0, index), y.index_select(0, index), count

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, count: int
                         ) -> tuple[torch.Tensor, int]:
        """Backward of the summed loss times the strategy's scale; returns the detached loss and
        what it weighs in the epoch's summed loss. Where the scale is 1/len(x) (every step of
        an even split), the mean reduction applies it: no extra multiply in forward and in
        backward."""
        scale = self.strategy.loss_scale(count)
        if len(x) and scale == 1.0 / len(x):  # a rank's last slice can be empty
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            return loss.detach(), len(x)
        loss = F.cross_entropy(self.model(x), y, reduction="sum")
        (loss * scale).backward()
        return loss.detach(), 1

    def step(self, x: torch.Tensor, y: torch.Tensor, count: int, step: int
             ) -> tuple[torch.Tensor, int]:
        loss = self.forward_backward(x, y, count)
        self.strategy.sync_gradients(self.model)
        self.optimizer_step()
        if self.state_bytes is None:  # the first step: gradients and optimizer state all exist
            self.state_bytes = self.model_state_bytes()
        self.strategy.zero_grad(self.optimizer)
        self.strategy.after_step(self.model, self.optimizer, step)
        return loss

    def sync_device(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ---- the driver's parts
    def snapshot(self) -> ModuleSnapshot:
        return ModuleSnapshot(self.net, self.optimizer,
                              self.strategy.local_optimizer(self.optimizer), self.strategy,
                              in_place=lambda: self.optimizer_compiled)

    @property
    def optimizer_compiles(self) -> bool:
        """A plain torch.optim optimizer (not a sharded wrapper such as ZeRO's, whose step is a
        collective of its own), not fused (torch.compile does not trace into a fused kernel: the
        update would stay that one kernel, behind a graph break), and, for SGD, without
        dampening (see `ModuleSnapshot`)."""
        return (self.strategy.local_optimizer(self.optimizer) is self.optimizer
                and self.cfg.optimizer_kernel != "fused"
                and all(not g.get("dampening") for g in self.optimizer.param_groups))

    def model_state_bytes(self) -> int:
        """Parameters + gradients + optimizer state this rank stores, counted from the storages
        of its local tensors (a DTensor's shard, a sharded optimizer's own part). Measured after
        an optimizer step and before zero_grad, when the gradients still exist."""
        params = list(self.net.parameters())
        state = self.strategy.local_optimizer(self.optimizer).state.values()
        return (storage_bytes(params) + storage_bytes(p.grad for p in params)
                + storage_bytes(v for per_param in state for v in per_param.values()))

    def warm_up_steps(self, steps: int) -> None:
        for i, (x, y, count) in enumerate(self.batches(epoch=0)):
            if i == steps:
                break
            self.step(x, y, count, i)
        self.sync_device()

    def try_compiled_step(self) -> None:
        """The whole step: forward and backward (AOTAutograd compiles the backward with the
        forward), and the optimizer's update where it `optimizer_compiles`; the trial runs one
        of each (the driver undoes it)."""
        # dynamic: the last, smaller step of an epoch must not recompile inside the clock.
        self.model = torch.compile(self.wrapped, dynamic=True)
        x, y, count = next(self.batches(epoch=0))
        with self.strategy.unsynced(self.wrapped):
            self.forward_backward(x, y, count)
        if self.optimizer_compiles:
            self.optimizer_step = torch.compile(self.optimizer.step)
            self.optimizer_compiled = True
            self.optimizer_step()
        self.sync_device()

    @property
    def compiled_step(self) -> str | None:
        """What `--compile` compiled, for the record; None for an eager run."""
        if self.model is self.wrapped:
            return None
        return "forward, backward" + (", optimizer" if self.optimizer_compiled else "")

    @property
    def optimizer_call(self) -> str:
        """How the loop updates, for the record: the fused kernel called directly
        (`training.fused_update`), or the optimizer's `step` (compiled or not), whose per-call
        Python a small model's step feels."""
        direct = self.optimizer_step != self.optimizer.step and not self.optimizer_compiled
        return "fused kernel" if direct else "optimizer.step"

    def compile_failure(self, exc: Exception) -> str | None:
        if not isinstance(exc, compile_errors()):
            return None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {reason[:200]}"

    def fall_back(self, reason: str) -> str:
        self.model = self.wrapped
        self.optimizer_step = adam_update(self.optimizer)
        self.optimizer_compiled = False
        return f"--compile is unavailable here ({reason}); this run is eager"

    def before_timed_epochs(self) -> None:
        # Dropout masks: reproducible, and different on every rank (as in one big batch).
        torch.manual_seed(self.cfg.seed + self.strategy.rank)

    def epoch_input(self, epoch: int) -> tuple[Iterator[Batch], torch.Tensor]:
        return self.batches(epoch), torch.zeros((), device=self.device)

    def train_epoch(self, prepared: tuple[Iterator[Batch], torch.Tensor],
                    hook: StepHook | None) -> torch.Tensor:
        batches, loss_total = prepared
        s = self.strategy
        for i, (x, y, count) in enumerate(batches):
            loss, weight = self.step(x, y, count, self.steps_done)
            loss_total.add_(loss, alpha=weight)
            self.steps_done += 1
            if hook is not None:
                seen = (i + 1) * len(x)
                hook(i, lambda t=loss_total, n=seen: float(t) / max(1, n))
        s.end_epoch(self.model, self.optimizer)
        if self.running_stats:
            s.average_running_stats(self.running_stats)
        self.sync_device()
        return loss_total

    def local_evaluation(self) -> list[float]:
        """This rank's strided part, in as many batches as rank 0's (the largest part): where
        forward gathers sharded parameters it is a collective, which every rank must join, so a
        rank whose part has run out scores an empty batch."""
        s, t = self.strategy, self.tensors
        self.net.eval()
        loss = correct = 0.0
        part = torch.arange(s.rank, len(t.test_y), s.world, device=self.device)
        largest = -(-len(t.test_y) // s.world)
        with torch.no_grad():
            for start in range(0, largest, EVAL_BATCH):
                index = part[start : start + EVAL_BATCH]
                logits = self.net(t.test_x[index])
                loss += F.cross_entropy(logits, t.test_y[index], reduction="sum").item()
                correct += (logits.argmax(1) == t.test_y[index]).sum().item()
        self.net.train()
        return [loss, correct, float(len(part))]

    @property
    def calibrated(self) -> bool:
        """Calibration steps run where the collectives run inside a wrapper (ZeRO's DDP), or as
        the cross-check of a hook's timing (ddp); with one worker nothing crosses a wire, and
        calibration would only measure noise."""
        return (self.strategy.info.comm in (CommMeasure.CALIBRATION, CommMeasure.HOOK)
                and self.strategy.world > 1)

    def calibration_times(self, steps: int, snapshot: ModuleSnapshot
                          ) -> tuple[list[float], list[float]]:
        """Forward+backward with and without synchronisation, alternating, on epoch-0 batches;
        no optimizer step, so only gradients and BatchNorm statistics change (the driver
        restores them)."""
        synced: list[float] = []
        unsynced: list[float] = []
        batches = self.batches(epoch=0)
        for _ in range(steps):
            batch = next(batches, None)
            if batch is None:
                batches = self.batches(epoch=0)
                batch = next(batches)
            for times, ctx in ((synced, nullcontext()),
                               (unsynced, self.strategy.unsynced(self.wrapped))):
                self.strategy.barrier()
                start = clock()
                with ctx:
                    self.forward_backward(*batch)
                    self.strategy.sync_gradients(self.model)
                self.sync_device()
                times.append(clock() - start)
                self.strategy.zero_grad(self.optimizer)
        return synced, unsynced

    def threads(self) -> int:
        return torch.get_num_threads()

    def param_count(self) -> int:
        return sum(p.numel() for p in self.net.parameters())  # a DTensor counts whole

    def memory_fields(self) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {"model_state_bytes": self.state_bytes,
                "cuda_peak_mb": torch.cuda.max_memory_allocated(self.device) / 2**20
                if cuda else None}

    def record_fields(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        shapes = [tuple(p.shape) for p in self.net.parameters()]
        return {"optimizer_impl": self.cfg.optimizer_kernel, "compiled_step": self.compiled_step,
                "optimizer_call": self.optimizer_call,
                "grad_bytes": sum(p.numel() * p.element_size() for p in self.net.parameters()),
                "wire_bytes": wire_bytes(self.cfg.compression, shapes, self.cfg.powersgd_rank)}

    def gather_weights(self) -> None:
        self.full_state = self.strategy.full_state_dict(self.net)

    def save_weights(self) -> tuple[Callable[[Path], None], dict[str, Any]]:
        """safetensors of the whole state dict (buffers included), from host copies."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.full_state.items()}

        def save(path: Path) -> None:
            path.write_bytes(safetensors_bytes(state))

        return save, {"tensors": sorted(state)}
