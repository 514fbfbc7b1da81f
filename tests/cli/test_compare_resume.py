"""A real `distbench compare` of real runs, interrupted with Ctrl-C after its first record, then
resumed: every cell ends with its repeats, nothing half-written.

Command: python -m pytest tests/cli/test_compare_resume.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from distbench.report.analysis import INTERRUPTED, is_complete
from distbench.results.records import load_records

from helpers import COMPARE_TINY


def _completed(out: Path) -> Counter:
    return Counter((r["strategy"], r["workers"]) for r in load_records(out) if is_complete(r))



@pytest.mark.slow
def test_interrupted_compare_resumes_to_the_same_cells(tmp_path):
    """Ctrl-C after the first record, then --resume: every cell ends with its repeats."""
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "distbench", "compare", "--strategies", "single,ddp",
           "--workers", "1,2", "--repeats", "2", *COMPARE_TINY, "--out", str(out),
           "--no-progress"]
    # SIGINT must reach Python's handler even if this test runs from a shell that ignores it.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    runs = out / "runs.jsonl"
    deadline = time.monotonic() + 240
    while not runs.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    first = runs.read_bytes()
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "--resume" in output
    after_interrupt = load_records(out)  # every line parses: nothing half-written
    assert runs.read_bytes().startswith(first)
    assert [r["status"] for r in after_interrupt if is_complete(r)] == ["ok"]
    assert all(r["error"] == INTERRUPTED for r in after_interrupt if not is_complete(r))

    resumed = subprocess.run([*cmd[:4], "--resume", str(out), "--no-progress"],
                             capture_output=True, text=True, timeout=600, env=os.environ)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 already done" in resumed.stdout
    assert runs.read_bytes().startswith(first)
    assert _completed(out) == {("single", 1): 2, ("ddp", 1): 2, ("ddp", 2): 2}
    assert all(r["status"] == "ok" for r in load_records(out) if is_complete(r))
    assert (out / "report.html").is_file()
