"""Cluster launch writers: generated sbatch and Compose files are valid, and every user value
reaches the worker as one argument, unchanged. (The engines running them:
tests/multiproc/test_cluster_launchers.py; the command's errors: tests/cli/test_launch_cli.py.)

Command: python -m pytest tests/unit/launch/test_launch_scripts.py
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from distbench.core.errors import UsageError
from distbench.launch.compose import ComposeJob, compose_yaml, write_compose
from distbench.launch.slurm import SlurmJob, sbatch_script, tf_config_from_slurm
from distbench.strategies import STRATEGIES, Launcher

RUN = ["--dataset", "mnist-5k", "--epochs", "1", "--no-progress"]
EVIL = "x'; rm -rf / #$(touch /tmp/pwned)"


def launch_line(script: str) -> list[str]:
    (line,) = [ln for ln in script.splitlines() if ln.startswith(("srun", "mpiexec"))]
    return shlex.split(line)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_sbatch_scripts_parse(tmp_path, strategy):
    how = STRATEGIES[strategy].launcher
    multi = how.multi_process
    job = SlurmJob(strategy, [*RUN, "--model", EVIL], nodes=4 if multi else 1,
                   tasks_per_node=8 if multi else 1, gpus_per_node=8, time="01:00:00",
                   partition="gpu", account="proj-1")
    job.validate()
    script = sbatch_script(job)
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    assert "#SBATCH --nodes=" in script and "#SBATCH --partition=gpu" in script
    argv = launch_line(script)
    assert argv[0] == "srun"
    worker = argv
    if how is Launcher.SPAWN:
        assert "--ntasks-per-node=1" in argv and "torch.distributed.run" in argv
        assert "--cpus-per-task=8" in argv  # the node's one task holds its 8 workers' CPUs
        assert "--nnodes=4" in argv and "--nproc-per-node=8" in argv
        assert "--rdzv-backend=c10d" in argv
        assert any(a.startswith("--rdzv-endpoint=$head_node:") for a in argv)
    elif how is Launcher.MPIEXEC:
        assert "--mpi=pmix" in argv
    elif how is Launcher.TF_CONFIG:
        assert "TF_CONFIG" in argv[3] and "launch tf-config --tasks-per-node 8" in argv[3]
        worker = shlex.split(argv[3].split("exec ", 1)[1])
    else:
        assert "--ntasks=1" in argv and "run" in argv
    # The hostile value reaches the worker as one argument, unchanged.
    assert worker.count(EVIL) == 1
    assert worker[worker.index("--strategy") + 1] == strategy


def test_head_node_survives_a_long_node_list(tmp_path):
    """The script's prologue under `set -euo pipefail` with an scontrol that prints 100,000 host
    names: `head -n 1` would close the pipe on it, and its SIGPIPE (141) would end the job."""
    script = sbatch_script(SlurmJob("ddp", RUN, nodes=2))
    prologue = [ln for ln in script.splitlines() if ln.startswith(("set ", "head_node="))]
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text("#!/bin/bash\nfor i in $(seq 100000); do echo node$i; done\n")
    fake.chmod(0o755)
    check = tmp_path / "prologue.sh"
    check.write_text("\n".join([*prologue, 'echo "$head_node"']) + "\n")
    proc = subprocess.run(["bash", str(check)], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{fake.parent}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "x"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "node1\n"


@pytest.mark.parametrize("value", ["gpu\n", "gpu\n#SBATCH --exclusive", "01:00:00\n"])
def test_sbatch_values_with_a_newline_are_refused(value):
    field = "time" if value.startswith("01") else "partition"
    with pytest.raises(UsageError, match="--" + field):
        SlurmJob("ddp", RUN, **{field: value}).validate()


@pytest.mark.parametrize(("nodes", "nproc", "given", "threads", "warned"), [
    (2, 1, None, 4, False),  # 8 cores, 2 workers on this machine: 4 threads each
    (2, 2, None, 2, False),
    (4, 4, None, 1, True),  # 16 workers on 8 cores: one thread each, still too many
    (2, 1, "8", 8, True),  # the user's own count is kept, and its oversubscription said
])
def test_a_rehearsal_shares_this_machines_cores(monkeypatch, nodes, nproc, given, threads,
                                                warned):
    """Every node of a one-machine rehearsal runs here: each worker gets cores // all workers,
    as `distbench run` gives its workers, not cores // the workers of its own node."""
    import warnings

    from distbench.launch import multinode

    monkeypatch.setattr(multinode, "usable_cores", lambda: 8)
    args = [*RUN, *(["--threads-per-worker", given] if given else [])]
    job = multinode.MultiNode("torchrun", "ddp", ["localhost"] * nodes, nproc, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shared, got = job.sharing_cores()
    assert got == threads and len(caught) == int(warned)
    for cmd in shared.commands():
        assert cmd[cmd.index("--threads-per-worker") + 1] == str(threads)
        assert cmd.count("--threads-per-worker") == 1


def test_mpiexec_inside_allocation():
    job = SlurmJob("mpi", RUN, nodes=2, tasks_per_node=4, mpi_launcher="mpiexec")
    argv = launch_line(sbatch_script(job))
    assert argv[:5] == ["mpiexec", "-n", "$SLURM_NTASKS", "-ppn", "4"]


def test_tf_config_from_slurm():
    env = {"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_PROCID": "3"}
    spec = json.loads(tf_config_from_slurm(env, 2))
    assert spec["cluster"]["worker"] == ["n1:23456", "n1:23457", "n2:23456", "n2:23457"]
    assert spec["task"] == {"type": "worker", "index": 3}


@pytest.mark.parametrize("procid", ["4", "-1", "x", "3.0"])
def test_tf_config_from_slurm_refuses_a_task_outside_the_job(procid):
    env = {"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_PROCID": procid}
    with pytest.raises(UsageError, match=r"SLURM_PROCID=.* is not a whole number in \[0, 3\]"):
        tf_config_from_slurm(env, 2)


def test_unknown_partition_against_the_cluster():
    job = SlurmJob("ddp", RUN, partition="nope")
    with pytest.raises(Exception, match="unknown partition 'nope'; this cluster has: debug"):
        job.validate(known_partitions=["debug"])


@pytest.mark.parametrize("strategy", [next(n for n, i in STRATEGIES.items() if i.launcher is kind)
                                      for kind in (Launcher.TF_CONFIG, Launcher.SPAWN)])
def test_compose_file(tmp_path, strategy):
    yaml = pytest.importorskip("yaml")
    paths = write_compose(ComposeJob(strategy, 3, [*RUN, "--model", EVIL]), tmp_path)
    assert {p.name for p in paths} == {"docker-compose.yml", "Dockerfile", "README.md"}
    spec = yaml.safe_load((tmp_path / "docker-compose.yml").read_text())
    services = spec["services"]
    assert list(services) == ["worker0", "worker1", "worker2"]
    for rank, (name, svc) in enumerate(services.items()):
        assert set(svc) == {"image", "build", "hostname", "environment", "command", "volumes"}
        assert svc["hostname"] == name and Path(svc["build"]["dockerfile"]).is_file()
        assert svc["command"][:5] == ["python", "-m", "distbench", "worker", "--strategy"]
        assert EVIL.replace("$", "$$") in svc["command"]  # Compose turns $$ back into $
        env = svc["environment"]
        if STRATEGIES[strategy].launcher is Launcher.TF_CONFIG:
            tf = json.loads(env["TF_CONFIG"])
            assert tf["task"]["index"] == rank and len(tf["cluster"]["worker"]) == 3
        else:
            assert env["RANK"] == str(rank) and env["MASTER_ADDR"] == "worker0"
    compose = compose_command()
    if compose:  # the real parser, which needs no Docker engine for `config`
        out = subprocess.run([*compose, "-f", str(tmp_path / "docker-compose.yml"), "config"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        # `config` prints a compose file again, so the escape is kept: $$ still means one $.
        resolved = yaml.safe_load(out.stdout)["services"]
        assert EVIL.replace("$", "$$") in resolved["worker1"]["command"]


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or the standalone `docker-compose`, whichever is here."""
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if plugin and plugin.returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_compose_yaml_quotes_every_value():
    text = compose_yaml(ComposeJob("ddp", 1, ["--model", 'a"b: c\n- d']), "/ctx", "/ctx/Dockerfile")
    yaml = pytest.importorskip("yaml")
    assert 'a"b: c\n- d' in yaml.safe_load(text)["services"]["worker0"]["command"]


def test_hostfile_formats(tmp_path):
    """MPICH `host:n`, Open MPI `host slots=n`, comments and IPv6 addresses."""
    from distbench.launch.multinode import read_hostfile

    hostfile = tmp_path / "hosts"
    hostfile.write_text("# cluster\nnode1:4\nnode2 slots=4  # second\n\n::1\nfe80::1\n")
    assert read_hostfile(str(hostfile), 4) == ["node1", "node2", "::1", "fe80::1"]
