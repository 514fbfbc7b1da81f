"""The TensorFlow rows run for real: replicas in one process, multi-worker gradient exchange
between processes, complete records, and clean failure.

Command: python -m pytest tests/multiproc/test_tf_strategies.py

TensorFlow never loads in the pytest process: it fixes its devices and threads at first use and
its thread pools do not survive fork, so every TF run here is a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from distbench.launch.local import free_ports
from distbench.results.records import load_records

from helpers import (
    TINY,
    assert_same_weights,
    marked_processes,
    needs_tf,
    run_cli,
    train_and_load,
)

HERE = Path(__file__).resolve().parent


def tf_run(tmp_path: Path, *flags: str, timeout: float = 180) -> dict:
    proc = run_cli("run", *TINY, "--calibration-steps", "3", *flags, "--out", str(tmp_path),
                   timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    (record,) = load_records(tmp_path)
    return record


@needs_tf
def test_tf_mirrored_on_cpu_has_two_real_replicas(tmp_path):
    """Two logical CPU devices, each replica fed half of the global batch of 16."""
    record = tf_run(tmp_path, "--strategy", "tf-mirrored", "--workers", "2")
    assert record["status"] == "ok" and record["framework"] == "tensorflow"
    assert record["replicas"] == 2  # num_replicas_in_sync
    assert record["per_replica_batch"] == [8, 8]
    assert record["global_batch"] == 16
    assert record["backend"] == "reduction-to-one-device"
    assert record["comm_method"].startswith("replica-calibration")
    assert record["comm_s"] is not None and record["comm_s"] >= 0
    assert record["tf_loop"] == "model.fit"


@needs_tf
@pytest.mark.parametrize("strategy,workers", [("tf-single", 1), ("tf-custom", 2)])
def test_tf_rows_write_complete_records(tmp_path, strategy, workers):
    # Two classes (chance 50%): a 1% target is reached by the first epoch, whatever it learnt.
    record = tf_run(tmp_path, "--strategy", strategy, "--workers", str(workers),
                    "--save-model", "--synthetic-classes", "2", "--target-accuracy", "0.01")
    assert record["status"] == "ok"
    assert record["replicas"] == workers
    assert record["per_replica_batch"] == [16 // workers] * workers
    assert record["steps"] == 2 * 4  # 2 epochs of 64 samples in global batches of 16
    assert len(record["history"]) == 2 and len(record["epoch_s"]) == 2
    assert record["train_s"] == pytest.approx(sum(record["epoch_s"]))
    assert record["time_to_target_s"] == record["history"][0]["time_s"] > 0
    assert 0 <= record["test_accuracy"] <= 1 and record["test_loss"] > 0
    assert record["input_pipeline"]["order"].startswith("shared per-epoch permutation")
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["framework"] == "tensorflow" and (tmp_path / "model.keras").stat().st_size


@needs_tf
@pytest.mark.parametrize("strategy,workers,extra", [
    ("tf-single", 1, []), ("tf-single", 1, ["--compile"]), ("tf-custom", 2, []),
    ("tf-multiworker", 2, [])], ids=["fit", "fit-xla", "custom", "multiworker"])
def test_steps_per_execution_trains_the_same_steps(tmp_path, strategy, workers, extra):
    """Four steps per execution: the same weights and losses as one, and the record says so.
    90 samples in batches of 16 are six steps, the last of 10: fit runs steps 0-3 and 4-5, the
    custom loop 0-3, 4 and 5, in each of two epochs."""
    flags = [*TINY, "--synthetic-samples", "90", "--calibration-steps", "3", "--strategy",
             strategy, "--workers", str(workers), *extra]
    one, expected = train_and_load(tmp_path / "one", *flags, "--tf-steps-per-execution", "1")
    four, weights = train_and_load(tmp_path / "four", *flags, "--tf-steps-per-execution", "4")
    xla = bool(extra) and "unavailable" not in four["compile_note"]  # unless XLA fell back
    for record, n in ((one, 1), (four, 4)):  # Adam, the default: TF's fused Adam kernel
        assert record["tf_execution"] == {"steps_per_execution": n, "jit_compile": xla,
                                          "optimizer_update": "ResourceApplyAdam"}
    assert four["config"]["tf_steps_per_execution"] == 4 and four["steps"] == 2 * 6
    assert_same_weights(weights, expected, f"{strategy} at 4 steps per execution")
    for a, b in zip(four["history"], one["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    if workers > 1:
        assert four["comm_s"] is not None and four["comm_s"] >= 0


def start_probe_workers(out: Path) -> list[subprocess.Popen[str]]:
    hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "TF_CONFIG": json.dumps({"cluster": {"worker": hosts},
                                        "task": {"type": "worker", "index": rank}})}
        procs.append(subprocess.Popen([sys.executable, str(HERE / "tf_probe.py"), str(out)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))
    return procs


def load_weights(path: Path) -> list[np.ndarray]:
    arrays = np.load(path)
    return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


@needs_tf
def test_tf_multiworker_processes_exchange_gradients(tmp_path):
    """Two OS processes end with identical weights, equal to one process on the global batch and
    unlike rank 0 trained alone on its shard."""
    procs = start_probe_workers(tmp_path)
    try:
        logs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    (record,) = load_records(tmp_path)
    assert record["strategy"] == "tf-multiworker" and record["status"] == "ok"
    assert len({w["pid"] for w in record["workers_info"]}) == 2
    assert record["replicas"] == 2 and record["per_replica_batch"] == [8, 8]

    rank0, rank1 = load_weights(tmp_path / "rank0.npz"), load_weights(tmp_path / "rank1.npz")
    full = load_weights(tmp_path / "full_batch.npz")
    alone = load_weights(tmp_path / "one_shard.npz")
    for a, b in zip(rank0, rank1, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(rank0, full, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert max(float(np.abs(a - b).max()) for a, b in zip(rank0, alone, strict=True)) > 1e-3


@needs_tf
def test_killed_tf_multiworker_worker_fails_the_run_cleanly(tmp_path, tmp_path_factory):
    """SIGKILL rank 1 mid-training: non-zero exit within 60 s, a failed record, nothing left:
    no process, and no autograph file in the temp folder (the killed rank cannot remove its
    own; the launcher's run folder holds them)."""
    marker = uuid.uuid4().hex
    temp = tmp_path_factory.mktemp("temp")
    proc = subprocess.Popen(
        [sys.executable, "-m", "distbench", "run", "--strategy", "tf-multiworker",
         "--workers", "2", "--dataset", "synthetic", "--synthetic-samples", "512",
         "--model", "mlp-25", "--batch-size", "8", "--epochs", "500", "--out", str(tmp_path)],
        env={**os.environ, "DISTBENCH_TEST_MARKER": marker, "TMPDIR": str(temp)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    first_epoch = threading.Event()

    def watch_stdout() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "epoch 1/" in line:
                first_epoch.set()

    threading.Thread(target=watch_stdout, daemon=True).start()
    try:
        assert first_epoch.wait(timeout=180), "training never started"
        victim = next(pid for pid, env in marked_processes(marker).items()
                      if env.get("RANK") == "1")
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(timeout=60)
        elapsed = time.monotonic() - killed_at
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert elapsed < 60
    assert "rank 1" in stderr, stderr
    (record,) = load_records(tmp_path)
    assert record["status"] == "failed" and record["error"]
    assert record["strategy"] == "tf-multiworker"
    time.sleep(0.5)
    assert marked_processes(marker) == {}, "processes left behind"
    left = list(temp.rglob("__autograph_generated_file*"))
    assert not left, f"{len(left)} autograph files left, e.g. {left[0]}"
