"""compare's warm start: a worker forked from its framework's fork server trains exactly what an
exec'd worker trains (same losses, to the bit, for a PyTorch, an MPI and a TensorFlow row), in
processes of its own, and its record says how it started; neither leaves TensorFlow's
autograph files in the temp folder.

Command: python -m pytest tests/multiproc/test_warm_start.py
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

from distbench.cli.worker import AUTOGRAPH_PREFIX
from distbench.results.records import load_records

from helpers import COMPARE_TINY, run_cli

TF = importlib.util.find_spec("tensorflow") is not None
STRATEGIES = "ddp,mpi" + (",tf-multiworker" if TF else "")
CELLS = STRATEGIES.count(",") + 1 + (2 if TF else 1)  # and the baselines: single, tf-single


def study(out: Path, worker_start: str) -> dict[tuple[str, int], dict]:
    # The study's own temp folder, looked at afterwards; short, as the fork servers' sockets
    # live in it.
    with tempfile.TemporaryDirectory() as temp:
        proc = run_cli("compare", "--strategies", STRATEGIES, "--workers", "2", "--repeats", "1",
                       *COMPARE_TINY, "--worker-start", worker_start, "--out", str(out),
                       "--no-progress", timeout=300,
                       env={"TMPDIR": temp, "PYTHONDONTWRITEBYTECODE": ""})  # bytecode too
        # Workers end by os._exit, which skips the atexit handler that deletes TensorFlow's
        # autograph files; they are removed anyway, forked or exec'd.
        left = sorted(p.name for p in Path(temp).glob(f"**/{AUTOGRAPH_PREFIX}*"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not left, f"{worker_start}: {len(left)} autograph files left, e.g. {left[0]}"
    return {(r["strategy"], r["workers"]): r for r in load_records(out)}


def test_forked_workers_train_what_execd_ones_do(tmp_path: Path) -> None:
    forked = study(tmp_path / "fork", "fork")
    execd = study(tmp_path / "exec", "exec")
    assert forked.keys() == execd.keys() and len(forked) == CELLS
    for cell, record in forked.items():
        other = execd[cell]
        assert record["status"] == other["status"] == "ok", \
            (cell, record["error"], other["error"])
        assert (record["worker_start"], other["worker_start"]) == ("fork", "exec"), cell
        assert record["test_loss"] == other["test_loss"], cell
        assert [h["train_loss"] for h in record["history"]] == \
            [h["train_loss"] for h in other["history"]], cell
        pids = {w["pid"] for w in record["workers_info"]}
        assert len(pids) == cell[1], f"{cell}: {cell[1]} workers ran in {len(pids)} processes"
    (session,) = json.loads((tmp_path / "fork" / "compare.json").read_text())["sessions"]
    assert session["worker_start"] == "fork"
    assert set(session["fork_server_s"]) == ({"pytorch", "tensorflow"} if TF else {"pytorch"})
