"""What the tests share, in one module: running the CLI as a user would, the record schema,
hand-made records, generated dataset files, one trained checkpoint, process lookups, and the
Keras facts computed in a TensorFlow subprocess.

Importable as `helpers` from every test folder (pyproject.toml puts tests/ on the path). It imports
neither torch nor TensorFlow at module level: the import-hygiene tests and the TF-only workers
must be able to load it without loading a framework.

Command: python -c "import helpers"   (from tests/, or with tests/ on PYTHONPATH)
"""

from __future__ import annotations

import atexit
import functools
import gzip
import hashlib
import importlib.util
import io
import itertools
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distbench.data.datasets import IDX_IMAGES, IDX_LABELS
from distbench.results.records import load_records
from distbench.strategies import STRATEGIES, Framework

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
# sitecustomize.py probes for the worker processes (tests/probes/sitecustomize.py says which).
PROBES_DIR = TESTS_DIR / "probes"


def shared_data_dir() -> Path | None:
    """$DISTBENCH_DATA, else ../shared/data beside the checkout, else None."""
    env = os.environ.get("DISTBENCH_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


def with_pythonpath(*folders: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment (default: this one) with `folders` first on PYTHONPATH."""
    base = dict(os.environ if env is None else env)
    parts = [str(f) for f in folders] + [p for p in base.get("PYTHONPATH", "").split(os.pathsep)
                                         if p]
    return {**base, "PYTHONPATH": os.pathsep.join(parts)}


# --------------------------------------------------------------------------- the CLI

TINY = ["--dataset", "synthetic", "--synthetic-samples", "64", "--model", "mlp-25",
        "--batch-size", "16", "--epochs", "2", "--warmup-steps", "2", "--no-progress"]
# A study small enough for `distbench compare` tests of real or stand-in runs.
COMPARE_TINY = ["--dataset", "synthetic", "--synthetic-samples", "128", "--model", "mlp-25",
                "--batch-size", "32", "--epochs", "1", "--warmup-steps", "1"]
# Plain SGD: every synchronous strategy of either framework reproduces its baseline exactly.
SGD = ["--optimizer", "sgd", "--momentum", "0", "--lr", "0.1"]
# One epoch of TINY with plain SGD: what the registry test and the TensorFlow parity tests train.
ONE_EPOCH_SGD = [*TINY, "--epochs", "1", *SGD]


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`distbench ARGS` as a user types it (in `cwd`, where default outputs land)."""
    return subprocess.run(
        [sys.executable, "-m", "distbench", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd,
    )


def assert_one_line(stderr: str) -> str:
    """The contract for every error the user can fix: one `distbench: error:` line."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    assert lines[0].startswith("distbench: error: ")
    return lines[0]


def final_weights(out: Path) -> dict[str, np.ndarray]:
    """The saved model's tensors by name: model.safetensors (PyTorch) or the layer variables of
    model.keras (TensorFlow), read without importing either framework."""
    if (out / "model.safetensors").is_file():
        from safetensors.numpy import load_file

        return load_file(str(out / "model.safetensors"))
    import h5py

    with zipfile.ZipFile(out / "model.keras") as archive:
        raw = archive.read("model.weights.h5")
    weights: dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(raw), "r") as h5:
        h5["layers"].visititems(
            lambda name, obj: weights.__setitem__(name, obj[()])
            if isinstance(obj, h5py.Dataset) else None)
    return weights


def train_and_load(out: Path, *args: str, timeout: float = 180
                   ) -> tuple[dict, dict[str, np.ndarray]]:
    """Run `distbench run ... --save-model` and return (record, final weights)."""
    proc = run_cli("run", *args, "--out", str(out), "--save-model", timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    (record,) = load_records(out)
    return record, final_weights(out)


class RunCache:
    """`distbench run --save-model` once per distinct flag list in a test session: parity tests
    and the registry test share their baselines and runs instead of training them again."""

    def __init__(self, make_dir: Any) -> None:
        self.make_dir = make_dir  # () -> a fresh empty folder
        self.done: dict[tuple[str, ...], tuple[dict, dict[str, np.ndarray]]] = {}

    def __call__(self, *flags: str) -> tuple[dict, dict[str, np.ndarray]]:
        if flags not in self.done:
            self.done[flags] = train_and_load(self.make_dir(), *flags)
        return self.done[flags]


def assert_same_weights(got: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                        what: str) -> None:
    """Float tolerance: summing gradients in another order changes the last bits only."""
    assert got.keys() == expected.keys(), f"{what}: other tensors {sorted(got)}"
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name} of {what} differs from the baseline")


# --------------------------------------------------------------------------- the record schema

# DESIGN §5, verbatim: every record carries these keys (nested ones checked where they are lists).
RECORD_KEYS = (
    "schema_version run_id started_at status error strategy framework workers threads_per_worker "
    "backend dataset model epochs global_batch lr optimizer seed scaling train_s epoch_s "
    "startup_s data_s per_rank_train_s workers_info samples_per_s comm_s comm_fraction "
    "test_accuracy test_loss history time_to_target_s peak_rss_mb env"
).split()
# Null in a failed record: a run that failed measured nothing.
MEASUREMENT_KEYS = ("train_s startup_s data_s samples_per_s comm_s comm_fraction test_accuracy "
                    "test_loss time_to_target_s").split()
WORKER_KEYS = {"rank", "pid", "host", "threads"}
HISTORY_KEYS = {"epoch", "time_s", "train_loss", "test_accuracy"}
ENV_KEYS = set("host cpu cores memory_gb gpus os python torch tensorflow mpi4py mpi_library "
               "git_commit network_interfaces scheduler".split())


def assert_schema(record: dict[str, Any]) -> None:
    """The keys every consumer of runs.jsonl may rely on."""
    missing = [k for k in RECORD_KEYS if k not in record]
    assert not missing, f"record lacks {missing}"
    assert ENV_KEYS <= record["env"].keys(), ENV_KEYS - record["env"].keys()
    for worker in record["workers_info"]:
        assert WORKER_KEYS <= worker.keys()
    for entry in record["history"]:
        assert HISTORY_KEYS <= entry.keys()
    started = datetime.fromisoformat(record["started_at"])
    assert started.utcoffset() == timedelta(0), "started_at must be UTC"


# --------------------------------------------------------------------------- hand-made records

_ids = itertools.count()


def rec(strategy: str = "single", workers: int = 1, train_s: float | None = 10.0,
        status: str = "ok", error: str | None = None, acc: float | None = 0.9,
        comm_s: float | None = 0.0, threads: int | None = None, host: str = "box",
        cores: int = 2, target: float | None = None, ttt: float | None = None,
        history: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """One record with only the keys the schema promises; a failed one keeps the same keys with
    the measurements null."""
    n = next(_ids)
    ok = status == "ok"
    threads = threads if threads is not None else max(1, cores // workers)
    info = STRATEGIES.get(strategy)
    record: dict[str, Any] = {
        "schema_version": 1, "run_id": f"run{n:05d}",
        "started_at": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
        "status": status, "error": error, "strategy": strategy,
        "framework": (info.framework if info else Framework.PYTORCH).value,
        "workers": workers, "threads_per_worker": threads, "dataset": "mnist-5k",
        "model": "mlp-128", "epochs": 2, "global_batch": 64, "lr": 0.001, "optimizer": "adam",
        "seed": 0, "scaling": "strong",
        "train_s": train_s if ok else None,
        "samples_per_s": 8000 / train_s if ok and train_s else None,
        "comm_s": comm_s if ok else None,
        "comm_fraction": comm_s / train_s if ok and comm_s is not None and train_s else None,
        "comm_method": "calibration" if workers > 1 else "none: one process",
        "test_accuracy": acc if ok else None, "startup_s": 1.0 if ok else None,
        "data_s": 0.1 if ok else None,
        "history": (history if history is not None else
                    [{"epoch": 1, "time_s": train_s / 2, "test_accuracy": (acc or 0) - 0.05},
                     {"epoch": 2, "time_s": train_s, "test_accuracy": acc}] if ok else []),
        "time_to_target_s": ttt if ok else None,
        "config": {"batch_size": 64, "device": "cpu", "warmup_steps": 5,
                   "target_accuracy": target, "scaling": "strong"},
        "env": {"host": host, "cores": cores, "cpu": "test cpu", "python": "3.11"},
    }
    record.update(extra)
    return record


def study_records() -> list[dict[str, Any]]:
    """A small study: baseline, ddp at 1 and 2 workers, a failing mpi cell, a TF pair."""
    out = []
    for t in (10.0, 12.0, 11.0):
        out.append(rec("single", 1, t))
    for t in (9.0, 10.0, 11.0):
        out.append(rec("ddp", 1, t, comm_s=0.5))
    for t in (5.0, 6.0, 7.0):
        out.append(rec("ddp", 2, t, comm_s=1.5))
    for _ in range(3):
        out.append(rec("mpi", 2, status="failed", error="rank 1 exited with code 1: boom"))
    for t in (20.0, 22.0):
        out.append(rec("tf-single", 1, t))
    for t in (15.0, 16.0):
        out.append(rec("tf-mirrored", 2, t, comm_s=None))
    return out


# --------------------------------------------------------------------------- dataset files
# Real files are tens of megabytes; these are a few kilobytes with known contents, so a parser test
# can check every byte it decodes and corrupt any part of a file on purpose.

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of uint8 values: magic (0, 0, 8 = ubyte, ndim), big-endian dims, data."""
    magic = IDX_IMAGES if array.ndim == 3 else IDX_LABELS
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_arrays(n_train: int = 12, n_test: int = 6, seed: int = 0) -> list[np.ndarray]:
    """(train images, train labels, test images, test labels) with every label value present."""
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        (np.arange(n_test) % 10).astype(np.uint8),
    ]


def write_idx_set(folder: Path, arrays: list[np.ndarray], gz: bool = True) -> list[Path]:
    """The four MNIST-layout files in `folder`, gzipped (official names) or raw (names sans .gz)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in zip(IDX_NAMES, arrays, strict=True):
        raw = idx_bytes(array)
        path = folder / (name + ".gz" if gz else name)
        path.write_bytes(gzip.compress(raw) if gz else raw)
        paths.append(path)
    return paths


def cifar_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (n, 3, 32, 32), int64 labels) for one generated batch."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64))


def cifar_bin_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary layout: per record 1 label byte, then 1024 R, 1024 G, 1024 B bytes."""
    records = np.concatenate(
        [labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1
    )
    return records.tobytes()


def cifar_py_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Python layout: a pickled dict with b'data' (N x 3072 uint8) and b'labels' (a list)."""
    batch = {b"batch_label": b"generated", b"data": images.reshape(len(images), -1),
             b"labels": [int(v) for v in labels]}
    return pickle.dumps(batch, protocol=2)


CIFAR_LAYOUTS = {
    "cifar-10-batches-bin": (".bin", cifar_bin_bytes),
    "cifar-10-batches-py": ("", cifar_py_bytes),
}


def write_cifar(root: Path, layout: str, train_batches=(1, 2, 3, 4, 5), per_batch: int = 4
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`root/cifar-10/<layout>/` with the given training batches and the test batch.

    Returns the arrays written, keyed by file stem, so tests can compare what was loaded.
    """
    suffix, encode = CIFAR_LAYOUTS[layout]
    folder = root / "cifar-10" / layout
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, stem in [(i, f"data_batch_{i}") for i in train_batches] + [(0, "test_batch")]:
        images, labels = cifar_batch(per_batch, seed=i)
        (folder / f"{stem}{suffix}").write_bytes(encode(images, labels))
        written[stem] = (images, labels)
    return written


def array_digest(*arrays: np.ndarray) -> str:
    """One sha256 over arrays' dtypes, shapes and bytes: equal digests, equal arrays."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def in_fresh_process(code: str, timeout: float = 120) -> Any:
    """Run `code` in a new interpreter (another hash seed, another global RNG state) that prints
    one JSON value as its last line; return that value. `helpers` is importable there."""
    env = with_pythonpath(TESTS_DIR)
    env["PYTHONHASHSEED"] = "12345"
    prelude = "import numpy, random; numpy.random.seed(7); random.seed(7); numpy.random.rand(99)\n"
    proc = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Tests whose TensorFlow half runs in a probe subprocess or in workers: skipped without it.
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="TensorFlow not installed (pip install 'distbench[tf]')")


def probe_result(script: Path, timeout: float = 300) -> Any:
    """Run a probe script (one that loads TensorFlow, which the pytest process must not) and
    return the JSON it prints on its `RESULT` line."""
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


# --------------------------------------------------------------------------- a trained checkpoint
# One small checkpoint per test session, made through the real CLI and shared by the predict and
# serve tests (training is the slow part; every test copies it before changing it).

TRAIN_MNIST_5K = ["run", "--dataset", "mnist-5k", "--model", "mlp-128", "--epochs", "1",
                  "--batch-size", "128", "--warmup-steps", "1", "--calibration-steps", "0",
                  "--no-progress", "--save-model"]


@functools.cache
def trained_checkpoint() -> Path:
    """The folder holding model.safetensors and model.json of mlp-128 after one mnist-5k epoch."""
    root = Path(tempfile.mkdtemp(prefix="distbench-trained-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    proc = run_cli(*TRAIN_MNIST_5K, "--out", str(root / "run"), timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return root / "run"


def copy_checkpoint(dest: Path) -> Path:
    """A private copy that a test may corrupt."""
    src = trained_checkpoint()
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "model.json"):
        shutil.copy(src / name, dest / name)
    return dest


@functools.cache
def mnist_5k() -> Any:
    from distbench.data import load_dataset

    return load_dataset("mnist-5k")


def write_test_images(folder: Path, count: int, start: int = 0) -> list[tuple[Path, str]]:
    """Test-set digits as image files, in the forms users have: 28x28 grayscale PNG, enlarged
    RGB PNG, and JPEG; returns (path, true class) pairs."""
    from PIL import Image

    data = mnist_5k()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + count):
        pixels = (data.test_x[i, 0] * 255).round().astype(np.uint8)
        image = Image.fromarray(pixels, "L")
        kind = i % 3
        if kind == 1:
            image = image.convert("RGB").resize((112, 112), Image.Resampling.BILINEAR)
        path = folder / f"digit{i}.{'jpg' if kind == 2 else 'png'}"
        image.save(path)
        out.append((path, data.classes[data.test_y[i]]))
    return out


# --------------------------------------------------------------------------- processes


def marked_processes(marker: str) -> dict[int, dict[str, str]]:
    """pid -> environment of every live process that carries `marker`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in raw and state != "Z":
            env = dict(
                v.split("=", 1) for v in raw.decode(errors="replace").split("\0") if "=" in v
            )
            found[int(entry.name)] = env
    return found


def forked_workers(marker: str) -> list[int]:
    """PIDs of the workers that the fork servers of a marked study forked. Their environment in
    /proc is the server's (a fork keeps it): they carry the marker but not RANK."""
    parents = {}
    for pid in marked_processes(marker):
        try:
            parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"distbench.cli.forkserver" not in cmdline:
            parents.pop(pid)
    return [pid for pid, parent in parents.items() if parent in parents]


# --------------------------------------------------------------------------- Keras facts
# TensorFlow never loads in the pytest process (it fixes its devices and threads at first use and
# its thread pools do not survive fork): these run in a subprocess, `keras_facts()`.

KERAS_MODEL_CASES = [((1, 28, 28), ["mlp-128", "mlp-512", "mlp-25", "cnn", "mobilenet_v2"]),
                     ((3, 32, 32), ["mlp-128", "cnn"])]


def keras_model_facts() -> dict[str, list]:
    """Per model and input shape: Keras and PyTorch trainable parameter counts, Keras logits'
    shape."""
    from distbench.core.config import ModelConfig
    from distbench.models.keras_models import build_keras_model
    from distbench.models.torch_models import build_model

    out = {}
    for shape, names in KERAS_MODEL_CASES:
        c, h, w = shape
        for name in names:
            keras_model = build_keras_model(ModelConfig(name), shape, 10, [0.5] * c, [0.25] * c)
            torch_model = build_model(ModelConfig(name), shape, 10, [0.5] * c, [0.25] * c)
            logits = keras_model(np.random.rand(2, h, w, c).astype("float32"))
            out[f"{name} {shape}"] = [
                sum(int(np.prod(v.shape)) for v in keras_model.trainable_variables),
                sum(p.numel() for p in torch_model.parameters()), list(logits.shape)]
    return out


def tf_index_batches(shuffle_buffer: int | None) -> dict[str, list]:
    """The index batches `tf_data.InputPipeline` yields for 9 samples, global batch 4, 2 ranks,
    epochs 0, 1 and 2, keyed "rank epoch"; and keyed "rank all", the labels (= indices) of the
    batches of `epochs_dataset(3)`, the one dataset the custom loop's timed epochs share."""
    from distbench.training.tf_data import InputPipeline

    out = {}
    for rank in range(2):
        pipe = InputPipeline(np.zeros((9, 1, 1, 1), np.float32), np.arange(9), seed=3,
                             rank=rank, world=2, global_batch=4, shuffle_buffer=shuffle_buffer)
        for epoch in range(3):
            out[f"{rank} {epoch}"] = [b.numpy().tolist() for b in pipe.index_batches(epoch)]
        out[f"{rank} all"] = [y.numpy().tolist() for _, y in pipe.epochs_dataset(3)]
    return out


def keras_facts_here() -> dict[str, Any]:
    """The pipeline and models facts, computed in this process (which imports TensorFlow). The
    pipeline comes first: building a Keras model sets TensorFlow's global seed, which tf.data's
    shuffle combines with its own, and `keras_facts` draws again in a process that builds none."""
    pipeline = {"shared": tf_index_batches(None), "buffer": tf_index_batches(9)}
    return {**pipeline, "models": keras_model_facts()}


def keras_facts() -> dict[str, Any]:
    """`keras_facts_here()` from a TensorFlow subprocess, and "buffer_again": the shuffle-buffer
    batches drawn by a second one (a run must not depend on the process it runs in)."""
    facts = in_fresh_process("import json, helpers; print(json.dumps(helpers.keras_facts_here()))",
                             timeout=240)
    facts["buffer_again"] = in_fresh_process(
        "import json, helpers; print(json.dumps(helpers.tf_index_batches(9)))", timeout=240)
    return facts


def projection_record(strategy: str, workers: int, train_s: float, comm_s: float,
                      steps: int = 100, model: str = "mlp-128",
                      grad_bytes: int | None = None) -> dict[str, Any]:
    """A successful record with what `project` reads from one."""
    r: dict[str, Any] = {
         "status": "ok", "strategy": strategy, "workers": workers, "dataset": "fashion-mnist",
         "model": model, "global_batch": 128, "scaling": "strong", "backend": "gloo",
         "train_s": train_s, "comm_s": comm_s, "steps": steps,
         "config": {"model": {"name": model}, "data": {"name": "fashion-mnist"},
                    "bucket_mb": 25.0, "overlap": False}}
    if grad_bytes is not None:
        r["grad_bytes"] = grad_bytes
    return r
