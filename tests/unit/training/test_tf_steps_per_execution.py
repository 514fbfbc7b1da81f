"""`--tf-steps-per-execution`: both TF loops report progress once per execution with the right
step, and time steps per step; the progress bar follows step indices that come in strides.

Command: python -m pytest tests/unit/training/test_tf_steps_per_execution.py

TensorFlow never loads in the pytest process (see tests/multiproc/test_tf_strategies.py): the
loop checks run in `tf_execution_probe.py`, a subprocess. That the steps themselves are the same
whatever the setting is checked on whole runs, in tests/multiproc/test_tf_strategies.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distbench.core.config import RunConfig
from distbench.core.errors import UsageError
from distbench.training.progress import TrainProgress

from helpers import needs_tf, probe_result

PROBE = Path(__file__).resolve().parent / "tf_execution_probe.py"


@pytest.fixture(scope="module")
def probe() -> dict:
    return probe_result(PROBE)


@needs_tf
@pytest.mark.parametrize("loop,steps", [("fit", [3, 5]), ("custom", [3, 4, 5])])
def test_progress_gets_the_last_step_of_each_execution(probe: dict, loop: str,
                                                       steps: list[int]) -> None:
    """Six steps at four per execution: fit's last execution (Keras counts it as 4-7) ends at
    step 5; the custom loop gives the smaller last step a call of its own."""
    facts = probe[loop]
    assert facts["steps"] == steps
    assert facts["last_mean_loss"] == pytest.approx(facts["epoch_mean_loss"], rel=1e-5)


@needs_tf
@pytest.mark.parametrize("loop,calls", [("fit", [4, 3]), ("custom", [1, 1, 4, 1])])
def test_step_times_are_per_step_after_whole_untimed_executions(probe: dict, loop: str,
                                                                calls: list[int]) -> None:
    """7 steps after 1 untimed: the whole first execution (steps 0-3) is untimed, then the
    epoch's six steps are followed by its batches again; each execution's time is shared
    equally among its steps."""
    times = probe[loop]["times"]
    assert len(times) == 7 and all(t > 0 for t in times)
    start = 0
    for size in calls:
        assert len(set(times[start:start + size])) == 1, (times, calls)
        start += size


@needs_tf
def test_fit_keeps_the_iterator_of_each_call(probe: dict) -> None:
    """Each `model.fit` call's iterator is kept alive (`FitLoop.keep_iterators`): one after the
    epoch's call, two after the timed steps' call; the custom loop keeps none this way."""
    assert probe["fit"]["kept"] == [1, 2]
    assert probe["custom"]["kept"] == [0, 0]


def test_progress_updates_from_steps_reported_in_strides() -> None:
    """200 steps update the bar every 4 steps; reported every 7 steps it still moves each time
    an update point has passed, as per-step reports do at each multiple of 4."""
    progress = TrainProgress(enabled=True, epochs=1, steps_per_epoch=200)
    hook = progress.hook(0, start=0.0, global_batch=16)
    assert hook is not None
    shown = []
    for step in range(6, 200, 7):
        hook(step, lambda: 1.0)
        shown.append(int(progress.bar.tasks[0].completed))
    assert shown[:4] == [7, 14, 21, 28] and shown[-1] == 196
    every_step = TrainProgress(enabled=True, epochs=1, steps_per_epoch=200)
    hook = every_step.hook(0, start=0.0, global_batch=16)
    assert hook is not None
    updates = []
    for step in range(200):
        before = every_step.bar.tasks[0].completed
        hook(step, lambda: 1.0)
        if every_step.bar.tasks[0].completed != before:
            updates.append(step)
    assert updates == list(range(0, 200, 4))


@pytest.mark.parametrize("steps", [0, 2**31])
def test_steps_per_execution_outside_keras_int32_counter_is_a_usage_error(steps: int) -> None:
    with pytest.raises(UsageError, match=rf"^--tf-steps-per-execution must be in \[1, "
                                         rf"2147483647\], got {steps}$"):
        RunConfig(tf_steps_per_execution=steps).validate()
