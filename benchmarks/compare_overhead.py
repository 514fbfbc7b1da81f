"""What `distbench compare` adds on top of the runs it starts.

Command: python benchmarks/compare_overhead.py [compare flags ...]
(default flags: --strategies single,ddp --workers 1,2 --repeats 2 --dataset mnist-5k --epochs 1)

Starts `distbench compare` as a user would, timing it from outside, and reads from its
compare.json the wall time of every `distbench run` process it started. Everything else is
compare's own cost, split into
  orchestration  its start-up, planning, the live display, launching and collecting each run;
  report         tables, plots and report.html at the end (a fixed cost, whatever the study);
and prints `overhead_orchestration=` and `overhead_total=` as fractions of the summed run times.
Target: orchestration under 2%.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = ["--strategies", "single,ddp", "--workers", "1,2", "--repeats", "2",
           "--dataset", "mnist-5k", "--epochs", "1"]
TARGET = 0.02


def main(flags: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="distbench-overhead-") as tmp:
        out = Path(tmp) / "study"
        cmd = [sys.executable, "-m", "distbench", "compare", *(flags or DEFAULT), "--out",
               str(out), "--no-progress"]
        print("running:", " ".join(cmd[2:]), flush=True)
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n")
            return proc.returncode
        (session,) = json.loads((out / "compare.json").read_text())["sessions"]
    runs, runs_s, report_s = session["runs"], session["runs_wall_s"], session["report_s"]
    orchestration = wall - runs_s - report_s
    print(f"runs={runs}")
    print(f"summed_run_wall_s={runs_s:.2f}")
    print(f"compare_wall_s={wall:.2f}")
    print(f"orchestration_s={orchestration:.2f} ({orchestration / runs:.3f} s per run)")
    print(f"report_s={report_s:.2f}")
    print(f"overhead_orchestration={orchestration / runs_s:.4f}")
    print(f"overhead_total={(wall - runs_s) / runs_s:.4f}")
    verdict = "meets" if orchestration / runs_s < TARGET else "MISSES"
    print(f"orchestration {verdict} the {TARGET:.0%} target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
