"""The live progress bar of a run (rank 0 only): epoch, step, loss, samples/s.

Updates are rate-limited to a few per second by step count, so the bar costs the timed loop one
integer comparison per step.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from distbench.system.timing import clock

UPDATES_PER_EPOCH = 50

# What a training loop calls after every step: (step index in the epoch, a function returning the
# epoch's running mean loss). The function may wait for the device, so it is called only when the
# bar is due to show it.
StepHook = Callable[[int, Callable[[], float]], None]


class TrainProgress:
    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.every = max(1, steps_per_epoch // UPDATES_PER_EPOCH)
        self.rate: float | None = None  # the last measured samples/s of this epoch
        self.console = Console(stderr=False)
        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            # Empty until the first step is measured: no "loss nan, 0 samples/s" frame.
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=4,
            disable=not enabled,
        )
        self.task = self.bar.add_task("train", total=steps_per_epoch, epoch=f"1/{epochs}",
                                      stats="")

    def __enter__(self) -> TrainProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.bar.__exit__(exc_type, exc, tb)

    def hook(self, epoch: int, start: float, global_batch: int) -> StepHook | None:
        """The step hook of one epoch whose clock started at `start`; None when the bar is off,
        so a loop without a bar pays nothing per step.

        A loop that runs several steps per call reports only each call's last step: the bar
        shows a step whenever one of its update points (every `every` steps) has been passed,
        so sparse step indices update it as often as consecutive ones."""
        if not self.enabled:
            return None
        next_due = 0

        def after_step(step: int, mean_loss: Callable[[], float]) -> None:
            nonlocal next_due
            if step >= next_due:
                next_due = (step // self.every + 1) * self.every
                rate = (step + 1) * global_batch / (clock() - start)
                self.update(epoch, step + 1, mean_loss(), rate)

        return after_step

    def update(self, epoch: int, steps_done: int, loss: float, rate: float) -> None:
        self.rate = rate
        self.bar.update(self.task, completed=steps_done, epoch=f"{epoch + 1}/{self.epochs}",
                        stats=self.stats(loss, rate))

    @staticmethod
    def stats(loss: float, rate: float | None) -> str:
        return f"loss {loss:.4f}" + (f" {rate:,.0f} samples/s" if rate is not None else "")

    def end_epoch(self, epoch: int, train_loss: float, accuracy: float) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=self.bar.tasks[0].total,
                            stats=self.stats(train_loss, self.rate))
            self.bar.console.print(
                f"epoch {epoch + 1}/{self.epochs}: train loss {train_loss:.4f}, "
                f"test accuracy {accuracy:.2%}"
            )
            if epoch + 1 < self.epochs:
                self.bar.reset(self.task)
                self.bar.update(self.task, stats="")
                self.rate = None
