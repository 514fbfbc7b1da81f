"""A run that shares its cores with a busy process is recorded as contended; alone it is not.

Command: python -m pytest tests/multiproc/test_contention.py

The busy loop is real (one spinning process per core, started by the test), and so is the run:
`distbench run` of `single` with one thread, long enough (a few seconds) for /proc/stat to see
the difference. On a machine that is busy anyway the quiet half fails, and rightly: that run was
contended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = ["run", "--strategy", "single", "--threads-per-worker", "1", "--dataset", "synthetic",
       "--synthetic-samples", "4096", "--synthetic-shape", "1x28x28", "--model", "mlp-512",
       "--batch-size", "32", "--epochs", "2", "--warmup-steps", "2", "--no-progress"]
SPIN = "import time\nend = time.time() + 120\nwhile time.time() < end:\n    pass\n"


def run(out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "distbench", *RUN, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    return record


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs /proc/stat (Linux)")
def test_busy_loop_marks_the_run_contended_and_a_quiet_run_is_not(tmp_path: Path) -> None:
    quiet = run(tmp_path / "quiet")["machine_state"]
    assert quiet["contended"] is False, quiet
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN])
                for _ in range(os.cpu_count() or 1)]
    try:
        busy = run(tmp_path / "busy")["machine_state"]
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert busy["contended"] is True, busy
    assert busy["others_cpu_fraction"] > quiet["others_cpu_fraction"] + 0.2
