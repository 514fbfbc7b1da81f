"""The `distbench` command as a user meets it: bad input gives one line and a clean exit code.

Command: python -m pytest tests/cli/test_cli.py

Each case runs the real command in a subprocess, because a traceback, a stray warning on stderr or
a half-written results folder are only visible from outside the process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distbench.cli.main import main
from distbench.data.datasets import MNIST_MIRRORS

from helpers import ENV_KEYS, assert_one_line, idx_arrays, run_cli, write_cifar, write_idx_set

# Small enough that a case which wrongly started training would still end quickly.
QUICK = ["--dataset", "synthetic", "--synthetic-samples", "32", "--model", "mlp-25",
         "--epochs", "1", "--warmup-steps", "0", "--no-progress"]

USAGE_ERRORS = {
    "unknown strategy": (["--strategy", "sideways-sgd"], "unknown strategy 'sideways-sgd'"),
    "unknown dataset": (["--dataset", "imagenet-22k"], "unknown dataset 'imagenet-22k'"),
    "unknown model": (["--model", "resnet-9000"], "unknown model 'resnet-9000'"),
    "batch not a multiple of workers": (["--workers", "3", "--batch-size", "64"], "multiple"),
    "batch size zero": (["--batch-size", "0"], "--batch-size"),
    "workers zero": (["--workers", "0"], "--workers"),
    "epochs zero": (["--epochs", "0"], "--epochs"),
    "epochs not a number": (["--epochs", "x"], "--epochs"),
    "negative lr": (["--lr", "-1"], "--lr"),
    "lr not a number": (["--lr", "fast"], "--lr"),
    "unknown scaling": (["--scaling", "sideways"], "--scaling"),
    "unknown optimizer": (["--optimizer", "rmsprop"], "--optimizer"),
    "negative weight decay": (["--weight-decay", "-1"], "--weight-decay"),
    "negative momentum": (["--optimizer", "sgd", "--momentum", "-1"], "--momentum"),
    "image size zero": (["--image-size", "0"], "--image-size"),
    "bad synthetic shape": (["--synthetic-shape", "28x28"], "--synthetic-shape"),
    "target accuracy above 1": (["--target-accuracy", "80"], "--target-accuracy"),
    "unknown flag": (["--turbo"], "--turbo"),
    "unknown backend": (["--strategy", "ddp", "--workers", "2", "--backend", "carrier-pigeon"],
                        "--backend"),
    "nccl without a GPU": (["--strategy", "ddp", "--workers", "2", "--backend", "nccl"],
                           "--device cuda"),
    "sync-every zero": (["--strategy", "param-avg", "--workers", "2", "--sync-every", "0"],
                        "--sync-every"),
    "bucket size zero": (["--strategy", "custom", "--workers", "2", "--bucket-mb", "0"],
                         "--bucket-mb"),
    "threads zero": (["--threads-per-worker", "0"], "--threads-per-worker"),
    "timeout zero": (["--timeout", "0"], "--timeout"),
    "negative warm-up": (["--warmup-steps", "-1"], "--warmup-steps"),
    "one synthetic class": (["--synthetic-classes", "1"], "--synthetic-classes"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_usage_error_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    flags, expected = USAGE_ERRORS[case]
    out = tmp_path / "out"
    proc = run_cli("run", *QUICK, *flags, "--out", str(out))
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert expected in assert_one_line(proc.stderr)
    assert not out.exists(), "a usage error must not write results"


def test_unknown_name_lists_the_valid_ones(tmp_path: Path) -> None:
    proc = run_cli("run", "--model", "nope", "--out", str(tmp_path / "out"))
    line = assert_one_line(proc.stderr)
    for name in ("mlp-128", "mlp-512", "mlp-25", "cnn", "mobilenet_v2"):
        assert name in line


def test_unknown_subcommand(tmp_path: Path) -> None:
    proc = run_cli("train")
    assert proc.returncode == 2
    assert_one_line(proc.stderr)


def test_missing_dataset_file(tmp_path: Path) -> None:
    """Offline with the file absent: exit 1, one line naming the file, --data-dir and the URL."""
    empty = tmp_path / "data"
    empty.mkdir()
    proc = run_cli("run", *QUICK, "--dataset", "mnist", "--data-dir", str(empty),
                   "--out", str(tmp_path / "out"),
                   env={"DISTBENCH_DATA": "", "DISTBENCH_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stderr + proc.stdout
    line = assert_one_line(proc.stderr)
    assert "mnist/train-images-idx3-ubyte.gz" in line and "--data-dir" in line
    assert MNIST_MIRRORS[0] + "train-images-idx3-ubyte.gz" in line


def test_corrupt_dataset_file(tmp_path: Path) -> None:
    paths = write_idx_set(tmp_path / "data" / "mnist", idx_arrays())
    paths[0].write_bytes(paths[0].read_bytes()[:-20])
    out = tmp_path / "out"
    proc = run_cli("run", *QUICK, "--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
                   "--out", str(out))
    assert proc.returncode == 1, proc.stderr + proc.stdout
    assert str(paths[0]) in assert_one_line(proc.stderr)
    # Not a usage error: the failed attempt is recorded, with the same one-line reason.
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert record["status"] == "failed" and str(paths[0]) in record["error"]


def test_partial_cifar_needs_the_flag(tmp_path: Path) -> None:
    write_cifar(tmp_path / "data", "cifar-10-batches-bin", train_batches=(1,))
    proc = run_cli("run", *QUICK, "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "--allow-partial-data" in assert_one_line(proc.stderr)


def test_env_prints_the_fingerprint(capsys: pytest.CaptureFixture[str]) -> None:
    """In process: the subcommand's own output is the test, not the start-up of a new one."""
    assert main(["env"]) == 0
    fingerprint = json.loads(capsys.readouterr().out)
    assert ENV_KEYS <= fingerprint.keys()
    assert fingerprint["cores"] >= 1 and fingerprint["python"].count(".") == 2


HELP = {  # help page: what it must mention
    "--help": ["run", "compare", "report", "predict", "serve", "launch", "env"],
    "run --help": ["--batch-size", "--allow-partial-data", "--average-optimizer-state"],
    "compare --help": ["--strategies", "--repeats", "--resume"],
}


@pytest.mark.parametrize("page", list(HELP))
def test_help(page: str) -> None:
    proc = run_cli(*page.split())
    assert proc.returncode == 0 and proc.stderr == ""
    assert "usage: distbench" in proc.stdout
    for word in HELP[page]:
        assert word in proc.stdout, word


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("distbench ")


WORKER_ERRORS = {
    "one-process strategy as two workers": (
        ["--strategy", "single", "--rank", "0", "--world-size", "2"], {}, "runs in one process"),
    "rank outside the world": (
        ["--strategy", "ddp", "--rank", "3", "--world-size", "2"], {}, "outside world size"),
    "malformed TF_CONFIG": (
        ["--strategy", "ddp"], {"TF_CONFIG": "{not json"}, "TF_CONFIG"),
    "baseline with more workers": (["--strategy", "single", "--workers", "2"], {}, "--workers 1"),
    "missing --config file": (["--config", "/nonexistent/config.json"], {}, "--config"),
}


@pytest.mark.parametrize("case", list(WORKER_ERRORS))
def test_worker_refuses_bad_launch_in_one_line(tmp_path: Path, case: str) -> None:
    """`distbench worker` as torchrun/mpiexec/srun start it: a wrong launch never trains."""
    flags, env, expected = WORKER_ERRORS[case]
    out = tmp_path / "out"
    proc = run_cli("worker", *QUICK, *flags, "--out", str(out), env=env)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert expected in assert_one_line(proc.stderr)
    assert not out.exists()
