"""Hostile input to every command: each is refused with one line, and no result is lost or made.

Command: python -m pytest tests/cli/test_hostile_inputs.py

Every case runs the CLI as a user types it, in a fresh folder that is also where default outputs
land, and checks the contract of bad input: a non-zero exit, exactly one `distbench: error:`
line on stderr and no traceback, and not one file in that folder created, changed or removed;
the only exception is a case whose run really starts (it fails while training or loading its
data), which leaves exactly one valid `failed` record. Input files a case needs (records of
another shape, a checkpoint with an edited sidecar, a port already taken) are made before the
folder is looked at, so a command that rewrote its input would fail too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from distbench.results.records import (
    RUNS_FILE,
    CorruptRecordsWarning,
    load_records,
    record_problem,
)

from helpers import TINY, assert_one_line, run_cli, write_cifar

# A study of one short run, for the compare cases.
ONE_RUN = ["--strategies", "single", "--workers", "1", "--repeats", "1", *TINY[:-1]]
NETWORK = ["--bandwidth", "1Gbit/s", "--latency", "5us"]


class Workspace:
    """The folder a case runs in, and the inputs it may ask for."""

    def __init__(self, root: Path, checkpoint: Path) -> None:
        self.root = root
        self.inputs = root / "inputs"
        self.inputs.mkdir(parents=True)
        self._checkpoint = checkpoint
        self.sockets: list[socket.socket] = []

    def file(self, name: str, content: bytes | str = "not what was asked for\n") -> str:
        path = self.inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def folder(self, name: str) -> str:
        path = self.inputs / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def records(self, name: str, *lines: bytes | str) -> str:
        """A results folder whose runs.jsonl holds exactly `lines`."""
        raw = b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\n" for ln in lines)
        self.file(f"{name}/{RUNS_FILE}", raw)
        return str(self.inputs / name)

    def good_records(self, name: str) -> str:
        return self.records(name, json.dumps(VALID_RECORD))

    def checkpoint(self, **sidecar: object) -> str:
        """A copy of the trained checkpoint, its model.json edited by `sidecar`."""
        dest = self.inputs / "checkpoint"
        dest.mkdir()
        for name in ("model.safetensors", "model.json"):
            shutil.copy(self._checkpoint / name, dest / name)
        meta = json.loads((dest / "model.json").read_text())
        (dest / "model.json").write_text(json.dumps({**meta, **sidecar}))
        return str(dest)

    def busy_port(self) -> str:
        """A loopback port something already listens on, for as long as the case runs."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        self.sockets.append(s)
        return str(s.getsockname()[1])


VALID_RECORD = {"run_id": "r1", "status": "ok", "strategy": "single", "workers": 1,
                "train_s": 1.0, "started_at": "2026-01-01T00:00:00+00:00", "steps": 10,
                "global_batch": 64, "dataset": "synthetic", "model": "mlp-25", "comm_s": 0.0,
                "test_accuracy": 0.5}


@dataclass(frozen=True)
class Case:
    # The command line, from the workspace (which makes any input it names).
    argv: Callable[[Workspace], list[str]]
    says: str  # a piece of the one error line
    run_starts: bool = False  # the run starts and fails: one `failed` record in inputs/out
    env: dict[str, str] = field(default_factory=dict)


def case(*argv: str, says: str, **kwargs: object) -> Case:
    return Case(lambda ws: list(argv), says, **kwargs)  # type: ignore[arg-type]


def with_ws(make: Callable[[Workspace], list[str]], says: str, **kwargs: object) -> Case:
    return Case(make, says, **kwargs)  # type: ignore[arg-type]


def cifar_without_test(ws: Workspace) -> str:
    """A CIFAR-10 copy without its test batch, while $DISTBENCH_DATA (set by the case) holds a
    whole one that must not stand in for it."""
    write_cifar(ws.inputs / "whole", "cifar-10-batches-bin")
    given = ws.inputs / "given"
    write_cifar(given, "cifar-10-batches-bin")
    (given / "cifar-10" / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    return str(given)


def study(ws: Workspace, compare_json: bytes | str) -> str:
    """A study folder whose compare.json is `compare_json`."""
    ws.file("study/compare.json", compare_json)
    return str(ws.inputs / "study")


RUN = ["run", *TINY]

CASES: dict[str, Case] = {
    # ------------------------------------------------------------------ run: numbers
    "run --lr inf": case(*RUN, "--lr", "inf", says="--lr must be a finite number > 0"),
    "run --lr nan": case(*RUN, "--lr", "nan", says="--lr must be a finite number > 0"),
    "run --lr -1": case(*RUN, "--lr", "-1", says="--lr must be"),
    "run --lr text": case(*RUN, "--lr", "fast", says="--lr: invalid float value"),
    "run --momentum nan": case(*RUN, "--momentum", "nan", says="--momentum must be"),
    "run --weight-decay inf": case(*RUN, "--weight-decay", "inf", says="--weight-decay must be"),
    "run --bucket-mb inf": case(*RUN, "--bucket-mb", "inf", says="--bucket-mb must be"),
    "run --timeout nan": case(*RUN, "--timeout", "nan", says="--timeout must be"),
    "run --timeout -5": case(*RUN, "--timeout", "-5", says="--timeout must be"),
    "run --tf-collective-timeout inf": case(*RUN, "--tf-collective-timeout", "inf",
                                             says="--tf-collective-timeout must be"),
    "run --tf-steps-per-execution 0": case(*RUN, "--strategy", "tf-single",
                                           "--tf-steps-per-execution", "0",
                                           says="--tf-steps-per-execution must be in [1, "),
    "run --target-accuracy 2": case(*RUN, "--target-accuracy", "2",
                                    says="--target-accuracy must be in (0, 1]"),
    "run --contention-threshold nan": case(*RUN, "--contention-threshold", "nan",
                                           says="--contention-threshold must be"),
    "run --test-fraction 1.5": case(*RUN, "--test-fraction", "1.5", says="--test-fraction"),
    "run --image-size 100000": case(*RUN, "--image-size", "100000",
                                    says="--image-size must be in [4, 1024]"),
    "run --image-size 2": case(*RUN, "--image-size", "2", says="--image-size must be"),
    "run --epochs 0": case(*RUN, "--epochs", "0", says="--epochs must be >= 1"),
    "run --batch-size 0": case(*RUN, "--batch-size", "0", says="--batch-size must be >= 1"),
    "run --workers 0": case(*RUN, "--workers", "0", says="--workers must be >= 1"),
    "run batch not a multiple": case(*RUN, "--strategy", "ddp", "--workers", "3",
                                     says="must be a positive multiple of --workers 3"),
    "run --threads-per-worker 0": case(*RUN, "--threads-per-worker", "0",
                                       says="--threads-per-worker must be >= 1"),
    "run --sync-every 0": case(*RUN, "--strategy", "param-avg", "--workers", "2",
                               "--sync-every", "0", says="--sync-every must be >= 1"),
    "run --synthetic-shape 0x28x28": case(*RUN, "--synthetic-shape", "0x28x28",
                                          says="expected CxHxW"),
    # ------------------------------------------------------------------ run: names
    "run --strategy unknown": case(*RUN, "--strategy", "nosuch", says="unknown strategy"),
    "run --strategy with a newline": case(*RUN, "--strategy", "ddp\n#!/bin/sh",
                                          says="unknown strategy 'ddp\\n#!/bin/sh'"),
    "run --dataset unknown": case(*RUN, "--dataset", "nosuch", says="unknown dataset"),
    "run --model unknown": case(*RUN, "--model", "nosuch", says="unknown model"),
    "run --optimizer lbfgs": case(*RUN, "--optimizer", "lbfgs", says="--optimizer must be"),
    "run --device tpu": case(*RUN, "--device", "tpu", says="--device must be cpu or cuda"),
    "run --backend nccl on cpu": case(*RUN, "--backend", "nccl", says="needs --device cuda"),
    "run --compression zip": case(*RUN, "--compression", "zip", says="--compression must be"),
    "run flags after --": case(*RUN, "--", "--lr", "1", says="only distbench launch passes"),
    # ------------------------------------------------------------------ run: files
    "run --out a file": with_ws(lambda ws: [*RUN, "--out", ws.file("taken")],
                                says="is a file, not a folder"),
    "run --out under a file": with_ws(lambda ws: [*RUN, "--out", ws.file("taken") + "/out"],
                                      says="is a file, not a folder"),
    "run --config missing": with_ws(lambda ws: ["run", "--config", str(ws.inputs / "no.json")],
                                    says="not a readable RunConfig JSON file"),
    "run --config a JSON list": with_ws(lambda ws: ["run", "--config", ws.file("c.json", "[1]")],
                                        says="not a readable RunConfig JSON file"),
    "run --config binary": with_ws(lambda ws: ["run", "--config", ws.file("c.json", b"\xff\0")],
                                   says="not a readable RunConfig JSON file"),
    "run --config lr as text": with_ws(
        lambda ws: ["run", "--config", ws.file("c.json", '{"lr": "fast"}')],
        says="a run setting has the wrong type"),
    "run --config and flags": with_ws(
        lambda ws: ["run", "--config", ws.file("c.json", "{}"), "--lr", "0.5"],
        says="holds every run setting; drop --lr"),
    # ------------------------------------------------------------------ run: it starts, fails
    "run whose loss diverges": with_ws(
        lambda ws: [*RUN, "--lr", "1e30", "--out", str(ws.inputs / "out")],
        # A one-process run's error has no rank to name: no "rank 0:" before it.
        says="error: training diverged: the mean training loss of epoch 1 is", run_starts=True),
    "run --data-dir lacking cifar's test batch": with_ws(
        lambda ws: [*RUN, "--dataset", "cifar10", "--data-dir", cifar_without_test(ws),
                    "--out", str(ws.inputs / "out")],
        says="--data-dir is used as given", run_starts=True,
        env={"DISTBENCH_DATA": "inputs/whole"}),
    # ------------------------------------------------------------------ compare
    "compare --out a file": with_ws(lambda ws: ["compare", *ONE_RUN, "--out", ws.file("taken")],
                                    says="is a file, not a folder"),
    "compare --workers 0": case("compare", *ONE_RUN[:2], "--workers", "0",
                                says="--workers expects comma-separated integers >= 1"),
    "compare --workers a,b": case("compare", "--workers", "a,b", says="--workers expects"),
    "compare --repeats 0": case("compare", "--repeats", "0", says="--repeats expects"),
    "compare --repeats many": case("compare", "--repeats", "many", says="--repeats expects"),
    "compare --strategies unknown": case("compare", "--strategies", "nosuch",
                                         says="unknown strategy"),
    "compare --strategies empty": case("compare", "--strategies", " , ",
                                       says="--strategies expects"),
    "compare --time-budget inf": case("compare", "--repeats", "auto", "--time-budget", "inf",
                                      says="--time-budget expects a duration"),
    "compare --target-ci nan": case("compare", "--repeats", "auto", "--target-ci", "nan",
                                    says="--target-ci must be"),
    "compare --rerun-contended -1": case("compare", *ONE_RUN, "--rerun-contended", "-1",
                                         says="--rerun-contended must be >= 0"),
    "compare --lr inf": case("compare", *ONE_RUN, "--lr", "inf", says="--lr must be"),
    "compare --resume a folder of no study": with_ws(
        lambda ws: ["compare", "--resume", ws.folder("empty")], says="has no compare.json"),
    "compare --resume a cut compare.json": with_ws(
        lambda ws: ["compare", "--resume", study(ws, '{"plan": {"strategies": ')],
        says="is not a study plan this distbench can read"),
    "compare --resume a compare.json list": with_ws(
        lambda ws: ["compare", "--resume", study(ws, "[1, 2]")],
        says="is not a study plan this distbench can read"),
    "compare --resume binary compare.json": with_ws(
        lambda ws: ["compare", "--resume", study(ws, b"\x89PNG\r\n\x1a\n\0\0")],
        says="is not a study plan this distbench can read"),
    "compare --resume with study settings": with_ws(
        lambda ws: ["compare", "--resume", ws.folder("s"), "--lr", "0.5"],
        says="takes no study settings; drop --lr"),
    # ------------------------------------------------------------------ report
    "report a folder without records": with_ws(lambda ws: ["report", ws.folder("empty")],
                                               says="no runs.jsonl in"),
    "report an empty runs.jsonl": with_ws(lambda ws: ["report", ws.records("r")],
                                          says="holds no run record"),
    "report a record of another shape": with_ws(
        lambda ws: ["report", ws.records("r", '{"foo": 1}')],
        says="holds no run record (1 line(s) skipped: line 1: status is null"),
    "report a JSON list line": with_ws(lambda ws: ["report", ws.records("r", "[1, 2]")],
                                       says="line 1: not a JSON object"),
    "report numbers as strings": with_ws(
        lambda ws: ["report", ws.records("r", json.dumps({**VALID_RECORD, "train_s": "12"}))],
        says="line 1: train_s is \"12\", not a number"),
    "report workers as a string": with_ws(
        lambda ws: ["report", ws.records("r", json.dumps({**VALID_RECORD, "workers": "2"}))],
        says="workers is \"2\", not an integer >= 1"),
    "report a history of strings": with_ws(
        lambda ws: ["report", ws.records("r", json.dumps({**VALID_RECORD,
                                                          "history": ["epoch 1"]}))],
        says="history holds an item that is not an object"),
    "report a binary file": with_ws(
        lambda ws: ["report", ws.records("r", bytes(range(256)) * 4)],
        says="holds no run record"),
    "report --out a file": with_ws(
        lambda ws: ["report", ws.good_records("r"), "--out", ws.file("taken")],
        says="is a file, not a folder"),
    "report --out holding other records": with_ws(
        lambda ws: ["report", ws.good_records("a"), "--out", ws.good_records("b")],
        says="holds a runs.jsonl of its own"),
    # ------------------------------------------------------------------ project
    "project a record of another shape": with_ws(
        lambda ws: ["project", ws.records("r", '{"foo": 1}'), *NETWORK],
        says="holds no run record"),
    "project a binary file": with_ws(
        lambda ws: ["project", ws.file("runs.jsonl", b"\0\1\2\n\xff"), *NETWORK],
        says="holds no run record"),
    "project --out a file": with_ws(
        lambda ws: ["project", ws.good_records("r"), *NETWORK, "--out", ws.file("taken")],
        says="is a file, not a folder"),
    "project --compute-s nan": case("project", "--compute-s", "nan", "--grad-bytes", "1MB",
                                    *NETWORK, says="--compute-s (a finite number > 0)"),
    "project --grad-bytes 0": case("project", "--compute-s", "1", "--grad-bytes", "0",
                                   *NETWORK, says="--grad-bytes must be at least 1 byte"),
    "project --measured-workers 0": case("project", "--compute-s", "1", "--grad-bytes", "1MB",
                                         "--measured-workers", "0", *NETWORK,
                                         says="--measured-workers >= 1"),
    "project --bandwidth -1": case("project", "--compute-s", "1", "--grad-bytes", "1MB",
                                   "--bandwidth=-1Gbit/s", "--latency", "5us",
                                   says="cannot read bandwidth"),
    "project --backward-fraction nan": case("project", "--compute-s", "1", "--grad-bytes",
                                            "1MB", *NETWORK, "--backward-fraction", "nan",
                                            says="--backward-fraction must be in (0, 1)"),
    "project without inputs": case("project", *NETWORK, says="give RESULTS_DIR"),
    # ------------------------------------------------------------------ predict
    "predict a missing checkpoint": with_ws(
        lambda ws: ["predict", str(ws.inputs / "none"), ws.file("x.png")],
        says="no such checkpoint file"),
    "predict a sidecar with a huge input": with_ws(
        lambda ws: ["predict", ws.checkpoint(input_shape=[1, 100000, 100000]), ws.file("x.png")],
        says="larger than any image Pillow opens"),
    "predict a sidecar that disagrees with the weights": with_ws(
        lambda ws: ["predict", ws.checkpoint(input_shape=[1, 9000, 9000]), ws.file("x.png")],
        says="does not match its sidecar"),
    "predict a sidecar with a huge image_size": with_ws(
        lambda ws: ["predict", ws.checkpoint(image_size=100000), ws.file("x.png")],
        says="image_size must be an integer in [1, 1024]"),
    "predict a file that is no image": with_ws(
        lambda ws: ["predict", ws.checkpoint(), ws.file("x.png", "plain text")],
        says="not an image"),
    # ------------------------------------------------------------------ serve (before Gradio)
    "serve --port 99999": with_ws(lambda ws: ["serve", ws.checkpoint(), "--port", "99999"],
                                  says="--port must be in [1, 65535]"),
    "serve --port -1": with_ws(lambda ws: ["serve", ws.checkpoint(), "--port", "-1"],
                               says="--port must be in [1, 65535]"),
    "serve --host that does not resolve": with_ws(
        lambda ws: ["serve", ws.checkpoint(), "--host", "nosuch.invalid"],
        says="--host nosuch.invalid: cannot resolve it"),
    "serve --port taken": with_ws(
        lambda ws: ["serve", ws.checkpoint(), "--port", ws.busy_port()],
        says="Address already in use; choose another --port"),
    # ------------------------------------------------------------------ bench-comm
    "bench-comm --timeout -5": case("bench-comm", "--timeout", "-5", says="--timeout must be"),
    "bench-comm --timeout nan": case("bench-comm", "--timeout", "nan", says="--timeout must be"),
    "bench-comm --backends empty": case("bench-comm", "--backends", "",
                                        says="--backends names no backend"),
    "bench-comm --backends unknown": case("bench-comm", "--backends", "ib",
                                          says="unknown backend 'ib'"),
    "bench-comm --workers 1": case("bench-comm", "--workers", "1", says="--workers must be >= 2"),
    "bench-comm --threads-per-worker 0": case("bench-comm", "--threads-per-worker", "0",
                                              says="--threads-per-worker must be >= 1"),
    "bench-comm --sizes 2B": case("bench-comm", "--sizes", "2B", says="at least 4 bytes"),
    "bench-comm --sizes 1KB:lots": case("bench-comm", "--sizes", "1KB:lots",
                                        says="cannot read size"),
    "bench-comm --dtype int8": case("bench-comm", "--dtype", "int8", says="--dtype must be"),
    "bench-comm --out a file": with_ws(lambda ws: ["bench-comm", "--out", ws.file("taken")],
                                       says="is a file, not a folder"),
    # ------------------------------------------------------------------ launch writers
    "slurm --partition with a newline": case(
        "launch", "slurm", "--strategy", "ddp", "--partition", "gpu\n#SBATCH --exclusive",
        says="--partition 'gpu\\n#SBATCH --exclusive' may only hold"),
    "slurm --time with a newline": case("launch", "slurm", "--strategy", "ddp", "--time",
                                        "01:00:00\n", says="--time must look like"),
    "slurm --job-name with a space": case("launch", "slurm", "--strategy", "ddp", "--job-name",
                                          "a b", says="--job-name 'a b' may only hold"),
    "slurm --port 70000": case("launch", "slurm", "--strategy", "ddp", "--port", "70000",
                               says="--port must be in [1, 65535]"),
    "slurm --gpus-per-node -1": case("launch", "slurm", "--strategy", "ddp",
                                     "--gpus-per-node", "-1", says="--gpus-per-node must be"),
    "slurm --nodes 0": case("launch", "slurm", "--strategy", "ddp", "--nodes", "0",
                            says="--nodes must be >= 1"),
    "slurm one-process strategy on two nodes": case(
        "launch", "slurm", "--strategy", "single", "--nodes", "2", says="runs in one process"),
    "slurm --script a folder": with_ws(
        lambda ws: ["launch", "slurm", "--strategy", "ddp", "--script", ws.folder("dir")],
        says="a folder; give the script's file name"),
    "slurm --script under a file": with_ws(
        lambda ws: ["launch", "slurm", "--strategy", "ddp", "--script",
                    ws.file("taken") + "/x.sbatch"], says="is a file, not a folder"),
    "slurm run flags --lr inf": case("launch", "slurm", "--strategy", "ddp", "--", "--lr",
                                     "inf", says="--lr must be a finite number"),
    "slurm unknown run flag": case("launch", "slurm", "--strategy", "ddp", "--", "--bogus",
                                   says="unrecognized arguments: --bogus"),
    "compose --dir a file": with_ws(
        lambda ws: ["launch", "compose", "--strategy", "ddp", "--dir", ws.file("taken")],
        says="--dir"),
    "compose --workers 0": case("launch", "compose", "--strategy", "ddp", "--workers", "0",
                                says="--workers must be >= 1"),
    "compose an mpiexec strategy": case("launch", "compose", "--strategy", "mpi",
                                        says="compose runs"),
    "torchrun a missing hostfile": with_ws(
        lambda ws: ["launch", "torchrun", "--strategy", "ddp", "--nodes", "1", "--hostfile",
                    str(ws.inputs / "hosts")], says="not found"),
    "torchrun --port 99999": with_ws(
        lambda ws: ["launch", "torchrun", "--strategy", "ddp", "--nodes", "1", "--hostfile",
                    ws.file("hosts", "localhost\n"), "--port", "99999", "--print-only"],
        says="--port must be in [1, 65535]"),
    "torchrun --nproc-per-node 0": with_ws(
        lambda ws: ["launch", "torchrun", "--strategy", "ddp", "--nodes", "1", "--hostfile",
                    ws.file("hosts", "localhost\n"), "--nproc-per-node", "0", "--print-only"],
        says="--nproc-per-node must be >= 1"),
    "mpiexec more nodes than hosts": with_ws(
        lambda ws: ["launch", "mpiexec", "--strategy", "mpi", "--nodes", "2", "--hostfile",
                    ws.file("hosts", "localhost\n"), "--print-only"],
        says="lists 1 host(s)"),
    "tf-config outside Slurm": case("launch", "tf-config", says="not inside a Slurm job step"),
    # ------------------------------------------------------------------ worker
    "worker --out a file": with_ws(lambda ws: ["worker", *TINY, "--out", ws.file("taken")],
                                   says="is a file, not a folder"),
    "worker of a one-process strategy in a world of 2": case(
        "worker", *TINY, "--world-size", "2", "--rank", "0", says="runs in one process"),
    "worker whose rendezvous port is taken": with_ws(
        lambda ws: ["worker", "--strategy", "ddp", *TINY, "--rank", "0", "--world-size", "1",
                    "--master-addr", "127.0.0.1", "--master-port", ws.busy_port(),
                    "--out", str(ws.inputs / "out")],
        says="Address already in use"),
    # ------------------------------------------------------------------ diff, env, the CLI
    "diff a missing folder": with_ws(
        lambda ws: ["diff", ws.good_records("a"), str(ws.inputs / "none")],
        says="no runs.jsonl in"),
    "diff records of another shape": with_ws(
        lambda ws: ["diff", ws.records("a", "[1]"), ws.good_records("b")],
        says="holds no run record"),
    "diff --fail-on-regression nan": with_ws(
        lambda ws: ["diff", ws.good_records("a"), ws.good_records("b"),
                    "--fail-on-regression", "nan"], says="--fail-on-regression must be"),
    "env with an unknown flag": case("env", "--bogus", says="unrecognized arguments: --bogus"),
    "no command": case(says="the following arguments are required: command"),
    "an unknown command": case("nosuch", says="invalid choice: 'nosuch'"),
}


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` by relative path: its bytes' digest (and folders, as such)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = ("folder" if path.is_dir() else
                    hashlib.sha256(path.read_bytes()).hexdigest())
    return out


# The umask the checkpoint is trained under: every file the run writes must follow it.
UMASK = 0o027


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny run with --save-model (synthetic data, mlp-25) under UMASK: (its folder, what it
    printed). Its checkpoint serves the predict and serve cases."""
    out = tmp_path_factory.mktemp("trained") / "out"
    old = os.umask(UMASK)
    try:
        proc = run_cli("run", *TINY, "--epochs", "1", "--save-model", "--out", str(out))
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def checkpoint(trained: tuple[Path, str]) -> Path:
    return trained[0]


@pytest.fixture
def workspace(tmp_path: Path, checkpoint: Path) -> Iterator[Workspace]:
    """A folder of its own (beside the test's cache folder, which conftest puts in tmp_path)."""
    ws = Workspace(tmp_path / "work", checkpoint)
    yield ws
    for s in ws.sockets:
        s.close()


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_line_and_costs_no_result(name: str, workspace: Workspace) -> None:
    given = CASES[name]
    argv = given.argv(workspace)
    env = {k: str(workspace.root / v) for k, v in given.env.items()}
    before = snapshot(workspace.root)
    proc = run_cli(*argv, env=env, cwd=workspace.root, timeout=180)
    assert proc.returncode != 0, f"{name} was accepted:\n{proc.stdout[-2000:]}"
    line = assert_one_line(proc.stderr)
    assert given.says in line, line
    after = snapshot(workspace.root)
    if given.run_starts:  # the run started: its one failed record, and nothing else
        records = workspace.inputs / "out" / RUNS_FILE
        (record,) = load_records(records)
        assert record["status"] == "failed" and record_problem(record) is None
        assert given.says.removeprefix("error: ") in record["error"]
        after = {k: v for k, v in after.items()
                 if k not in ("inputs/out", f"inputs/out/{RUNS_FILE}")}
    changed = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    assert not changed, f"files created, changed or removed: {changed}"


# --------------------------------------------------------------------------- not refusals


def test_a_run_says_where_its_model_went_and_writes_under_the_umask(
        trained: tuple[Path, str]) -> None:
    out, stdout = trained
    assert f"model saved to {out / 'model.safetensors'}" in stdout
    for name in (RUNS_FILE, "model.safetensors", "model.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~UMASK, name


def test_the_first_progress_frame_shows_no_loss() -> None:
    """Before a step is measured the bar has no loss and no rate to show (not `loss nan`,
    `0 samples/s`); after one, both."""
    from rich.console import Console

    from distbench.training.progress import TrainProgress

    def frame(progress: TrainProgress) -> str:
        text = io.StringIO()
        Console(file=text, width=200).print(progress.bar.make_tasks_table(progress.bar.tasks))
        return text.getvalue()

    progress = TrainProgress(enabled=True, epochs=2, steps_per_epoch=10)
    assert "nan" not in frame(progress) and "samples/s" not in frame(progress)
    progress.update(0, 1, 2.5, 1234.0)
    assert "loss 2.5000 1,234 samples/s" in frame(progress)


def test_resume_after_a_cut_record_warns_once_and_runs_it_again(tmp_path: Path) -> None:
    """A runs.jsonl whose last record a crash cut short: `compare --resume` says so in one
    warning (however often it reads the file), runs the lost run again and reports."""
    study = tmp_path / "study"
    first = run_cli("compare", *ONE_RUN, "--no-progress", "--out", str(study), timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "1 cell × 1 repeat = 1 run," in first.stdout
    runs = study / RUNS_FILE
    runs.write_bytes(runs.read_bytes()[:-200])
    again = run_cli("compare", "--resume", str(study), "--no-progress", timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    (warning,) = again.stderr.splitlines()
    assert warning.startswith("distbench: warning: ") and "skipped 1 line(s)" in warning
    assert "0 already done" in again.stdout
    with pytest.warns(CorruptRecordsWarning):  # the cut line stays, one bad line
        assert [r["status"] for r in load_records(runs)] == ["ok"]


def test_a_failed_allocation_is_one_line_saying_what_to_shrink() -> None:
    from distbench.cli.worker import out_of_memory
    from distbench.core.errors import DistbenchError

    torch_says = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                              "can't allocate memory: you tried to allocate 5120000000000 bytes.")
    error = out_of_memory(torch_says)
    assert isinstance(error, DistbenchError) and "\n" not in str(error)
    assert str(error).startswith("out of memory (4,768.4 GiB at once)")
    other = RuntimeError("a bug")
    assert out_of_memory(other) is other
