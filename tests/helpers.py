"""Running the real CLI in a subprocess, as a user would, and reading what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
