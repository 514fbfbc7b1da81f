"""The virtual cluster for real, as root: namespaces, a shaped bridge, and runs launched into it.

Command: sudo python -m pytest tests/multiproc/test_vcluster.py

Two nodes at 200 Mbit/s: the measured link rate, a 2-node ddp training through the netns launch
path, and an allreduce between the namespaces whose bandwidth shows that the bytes crossed the
shaped link (not loopback, not shared memory). Transfers are short: the machine is small.
Every test starts from `down()` and the cluster is always taken down again, even on failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distbench.comm.bench_comm import BenchSpec, write_worker_config
from distbench.core.errors import DistbenchError
from distbench.launch.local import Worker, start_process, supervise
from distbench.launch.multinode import MultiNode
from distbench.launch.netns import mpiexec_command, torchrun_commands
from distbench.results.records import load_records
from distbench.vcluster import cluster as vc
from distbench.vcluster.spec import Cluster, parse_rate

RATE = "200Mbit"
TOLERANCE = 0.30
TINY = ["--dataset", "synthetic", "--synthetic-samples", "256", "--model", "mlp-25",
        "--batch-size", "32", "--epochs", "1", "--no-progress"]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, a bridge, tc)"
    missing = [t for t in ("ip", "tc") if shutil.which(t) is None]
    return f"{' and '.join(missing)} not found (iproute2)" if missing else None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_not() is not None,
                                                   reason=_why_not() or "")]


def root_namespace() -> tuple[str, str]:
    """The root namespace's links and routes, which the cluster must never change."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    return "\n".join(ln.split(":", 2)[1] for ln in links.splitlines()), routes


def nothing_left() -> None:
    assert vc.namespaces() == []
    assert not any(p.name.startswith("distbench-") for p in vc.ETC_NETNS.glob("*"))
    assert not vc.STATE_DIR.exists()
    assert "distbench" not in subprocess.run(["ip", "link"], capture_output=True,
                                             text=True).stdout


@pytest.fixture
def no_cluster(request: pytest.FixtureRequest) -> None:
    vc.down()
    request.addfinalizer(vc.down)


def test_down_cleans_by_name_without_state_and_twice(no_cluster, tmp_path):
    """Runs first, on its own cluster: the root namespace is untouched while up, and `down`
    finds everything by name when the state file is gone."""
    before = root_namespace()
    made = vc.up(3, "1Gbit", "10.213.7.0/24", str(tmp_path / "hosts"))
    assert [n.address for n in made.nodes] == ["10.213.7.1", "10.213.7.2", "10.213.7.3"]
    assert root_namespace() == before
    assert (tmp_path / "hosts").read_text() == "distbench-n0\ndistbench-n1\ndistbench-n2\n"
    with pytest.raises(DistbenchError, match="already up"):
        vc.up(2, "1Gbit")
    (vc.STATE_DIR / vc.STATE_NAME).unlink()
    assert vc.down() == ["distbench-hub", "distbench-n0", "distbench-n1", "distbench-n2"]
    assert vc.down() == []
    nothing_left()
    assert root_namespace() == before


@pytest.fixture(scope="module")
def shaped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    vc.down()
    request.addfinalizer(lambda: (vc.down(), nothing_left()))
    return vc.up(2, RATE, hostfile=str(tmp_path_factory.mktemp("vcluster") / "hosts"))


def within(measured_bps: float, shaped_bps: float) -> bool:
    return abs(measured_bps - shaped_bps) <= TOLERANCE * shaped_bps


def test_status_measures_the_shaped_rate(shaped):
    st = vc.status(seconds=2.0)
    assert [(n["name"], n["address"], n["shaped_bps"]) for n in st["nodes"]] == [
        ("distbench-n0", "10.213.0.1", parse_rate(RATE)),
        ("distbench-n1", "10.213.0.2", parse_rate(RATE)),
    ]
    assert within(st["measured_bps"], parse_rate(RATE)), st["measured_bps"]


def test_ddp_training_across_the_namespaces(shaped, tmp_path):
    out = tmp_path / "out"
    job = MultiNode("torchrun", "ddp", [n.name for n in shaped.nodes], 1,
                    [*TINY, "--out", str(out)], 29500, sys.executable, shaped.hostfile,
                    netns=True)
    job.validate()
    job.run_here(timeout=240)
    (record,) = load_records(out)
    assert record["status"] == "ok" and record["workers"] == 2
    assert record["cluster_source"] == "torchrun"


@pytest.mark.parametrize("backend", ["gloo", "mpi"])
def test_allreduce_crosses_the_shaped_link(shaped, tmp_path, backend):
    """bench-comm's own worker, 4 MB allreduces: the bus bandwidth is the link's rate."""
    if backend == "mpi" and importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed")
    result = tmp_path / "result.json"
    config = tmp_path / "config.json"
    write_worker_config(config, backend, BenchSpec(backends=[backend], workers=2,
                                                   sizes=[4 << 20], repeats=3, warmup=1), result)
    program = ["-m", "distbench.comm.bench_comm", "--worker", str(config)]
    if backend == "mpi":
        cmds = [mpiexec_command(shaped, shaped.nodes, 1, 29501, sys.executable, shaped.hostfile,
                                program)]
    else:
        cmds = torchrun_commands(shaped.nodes, 1, 29501, sys.executable, program)
    # torchrun's log folders in the test's own (by default one per node is left in /tmp).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PET_LOG_DIR": str(tmp_path / "torchrun")}
    logs = [tmp_path / f"node{i}.log" for i in range(len(cmds))]
    supervise([Worker(i, start_process(cmd, env, log, show_stdout=False), log)
               for i, (cmd, log) in enumerate(zip(cmds, logs))], timeout=120)
    (row,) = json.loads(Path(result).read_text())
    assert within(row["busbw_Bps"] * 8, parse_rate(RATE)), row["busbw_Bps"] * 8
