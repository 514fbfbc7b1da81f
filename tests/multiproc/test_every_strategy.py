"""Every registered strategy, taken from the registry (never from a list of names): it trains
with the workers it allows, every launch writer accepts it or refuses it in one line as its
launcher kind says, the report files it under its framework after its baseline, and a synchronous
one ends with its framework baseline's weights.

Command: python -m pytest tests/multiproc/test_every_strategy.py

A strategy added to the registry is covered here without a line of this file changing. Runs are
small (64 synthetic samples, mlp-25, one epoch of plain SGD) and shared with the parity tests
through the session's `trained_runs`.
"""

from __future__ import annotations

import pytest

from distbench.core.errors import UsageError
from distbench.launch.compose import ComposeJob, compose_yaml
from distbench.launch.multinode import MultiNode
from distbench.launch.slurm import SlurmJob, sbatch_script
from distbench.report.analysis import analyse
from distbench.strategies import (
    STRATEGIES,
    CommMeasure,
    Framework,
    Launcher,
    StrategyInfo,
    framework_baselines,
    missing_framework,
)

from helpers import ONE_EPOCH_SGD, RunCache, assert_same_weights

NAMES = list(STRATEGIES)
SYNCHRONOUS = [name for name, info in STRATEGIES.items()
               if info.synchronous and not info.single_worker]
# Which launcher kinds each multi-node writer starts (README, "Workers can equally be started by
# an external launcher"): Compose gives each container torchrun variables or a TF_CONFIG; torchrun
# starts spawn workers; mpiexec starts mpi ranks and, as "MPI + DDP", spawn workers too. Slurm's
# sbatch writer takes every kind.
WRITERS = {
    "compose": {Launcher.SPAWN, Launcher.TF_CONFIG},
    "torchrun": {Launcher.SPAWN},
    "mpiexec": {Launcher.SPAWN, Launcher.MPIEXEC},
}
RUN_ARGS = ["--dataset", "mnist-5k", "--epochs", "1"]


def workers_of(info: StrategyInfo) -> int:
    return 1 if info.single_worker else 2


def baseline_of(info: StrategyInfo) -> str:
    return framework_baselines()[info.framework]


def run_of(trained_runs: RunCache, name: str) -> tuple[dict, dict]:
    """The strategy's shared run; skipped where its framework is not installed."""
    hint = missing_framework(name)
    if hint:
        pytest.skip(hint)
    workers = workers_of(STRATEGIES[name])
    return trained_runs(*ONE_EPOCH_SGD, "--strategy", name, "--workers", str(workers))


def test_every_framework_has_a_one_worker_baseline() -> None:
    baselines = framework_baselines()
    assert set(baselines) == {info.framework for info in STRATEGIES.values()}
    for framework, name in baselines.items():
        info = STRATEGIES[name]
        assert info.framework is framework and info.single_worker and info.synchronous


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_it_trains_with_the_workers_it_allows(trained_runs: RunCache, name: str) -> None:
    info = STRATEGIES[name]
    record, weights = run_of(trained_runs, name)
    workers = workers_of(info)
    assert (record["status"], record["strategy"], record["workers"]) == ("ok", name, workers)
    assert record["framework"] == info.framework.value
    processes = workers if info.launcher.multi_process else 1
    assert len({w["pid"] for w in record["workers_info"]}) == processes
    assert (record["global_batch"], record["steps"]) == (16, 4)  # 64 samples, one epoch
    assert record["samples_per_s"] == pytest.approx(64 / record["train_s"])
    if info.comm is CommMeasure.NONE:
        assert not record["comm_s"], "one process: nothing crosses a wire"
    else:
        assert record["comm_s"] is not None and record["comm_s"] >= 0
    assert weights, "no checkpoint"


def writer_validation(writer: str, name: str):  # noqa: ANN201 - a bound method
    if writer == "compose":
        return ComposeJob(name, 2, RUN_ARGS).validate
    return MultiNode(writer, name, ["node1", "node2"], 2, RUN_ARGS, hostfile="hosts").validate


@pytest.mark.parametrize("name", NAMES)
def test_every_launch_writer_accepts_it_or_refuses_in_one_line(name: str) -> None:
    info = STRATEGIES[name]
    nodes, tasks = (2, 2) if info.launcher.multi_process else (1, 1)
    slurm = SlurmJob(name, RUN_ARGS, nodes=nodes, tasks_per_node=tasks)
    slurm.validate()
    assert f"--strategy {name}" in sbatch_script(slurm)
    for writer, kinds in WRITERS.items():
        validate = writer_validation(writer, name)
        if info.launcher in kinds:
            validate()
        else:
            with pytest.raises(UsageError) as refused:
                validate()
            message = str(refused.value)
            assert "\n" not in message and name in message, f"{writer}: {message}"
    if info.launcher in WRITERS["compose"]:
        assert name in compose_yaml(ComposeJob(name, 2, RUN_ARGS), "/src", "/src/Dockerfile")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_report_files_it_after_its_baseline(trained_runs: RunCache, name: str) -> None:
    info = STRATEGIES[name]
    base = baseline_of(info)
    record, _ = run_of(trained_runs, name)
    records = [record] if name == base else [record, run_of(trained_runs, base)[0]]
    (setup,) = analyse(records).setups  # the same settings: one setup
    assert [(c.strategy, c.workers) for c in setup.cells][0] == (base, 1)
    (cell,) = [c for c in setup.cells if c.strategy == name]
    assert (cell.framework, cell.status, cell.ok) == (info.framework.value, "ok", 1)
    if base == framework_baselines()[Framework.PYTORCH]:
        assert cell.speedup is not None and cell.framework_baseline is None
    else:  # a TF row: the PyTorch speedup needs `single`, its own view needs its baseline
        assert cell.framework_baseline == base and cell.speedup_fw is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", SYNCHRONOUS)
def test_a_synchronous_one_ends_with_its_baselines_weights(trained_runs: RunCache,
                                                            name: str) -> None:
    _, weights = run_of(trained_runs, name)
    _, expected = run_of(trained_runs, baseline_of(STRATEGIES[name]))
    assert_same_weights(weights, expected, name)
