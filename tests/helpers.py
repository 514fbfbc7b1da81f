"""Running the real CLI in a subprocess, as a user would, and reading what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from distbench.results.records import load_records

TINY = ["--dataset", "synthetic", "--synthetic-samples", "64", "--model", "mlp-25",
        "--batch-size", "16", "--epochs", "2", "--warmup-steps", "2", "--no-progress"]


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distbench", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


def train_and_load(out: Path, *args: str) -> tuple[dict, dict]:
    """Run `distbench run ... --save-model` and return (record, final weights)."""
    proc = run_cli("run", *args, "--out", str(out), "--save-model")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (record,) = load_records(out)
    return record, load_file(str(out / "model.safetensors"))


# DESIGN §5, verbatim: every record carries these keys (nested ones checked where they are lists).
RECORD_KEYS = (
    "schema_version run_id started_at status error strategy framework workers threads_per_worker "
    "backend dataset model epochs global_batch lr optimizer seed scaling train_s epoch_s "
    "startup_s data_s per_rank_train_s workers_info samples_per_s comm_s comm_fraction "
    "test_accuracy test_loss history time_to_target_s peak_rss_mb env"
).split()
WORKER_KEYS = {"rank", "pid", "host", "threads"}
HISTORY_KEYS = {"epoch", "time_s", "train_loss", "test_accuracy"}
ENV_KEYS = set("host cpu cores memory_gb gpus os python torch tensorflow mpi4py mpi_library "
               "git_commit network_interfaces scheduler".split())


def assert_schema(record: dict[str, Any]) -> None:
    """Shared with the CLI smoke test: the keys every consumer of runs.jsonl may rely on."""
    missing = [k for k in RECORD_KEYS if k not in record]
    assert not missing, f"record lacks {missing}"
    assert ENV_KEYS <= record["env"].keys(), ENV_KEYS - record["env"].keys()
    for worker in record["workers_info"]:
        assert WORKER_KEYS <= worker.keys()
    for entry in record["history"]:
        assert HISTORY_KEYS <= entry.keys()
    started = datetime.fromisoformat(record["started_at"])
    assert started.utcoffset() == timedelta(0), "started_at must be UTC"


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
