"""`distbench compare --save-model best`: keep the checkpoint of the most accurate ok run.

Command: distbench compare --strategies single,ddp --save-model best --out results/study
         (then: distbench serve results/study/best-model)

The runs of a study go one at a time and each saves its checkpoint into the study folder. After
each run, `keep_best` moves that checkpoint (weights and sidecar) into `best-model/` when its test
accuracy beats the one kept there, and deletes it otherwise: a study of many runs keeps exactly
one checkpoint, and `--resume` goes on comparing against the one already kept. Ties keep the
earlier run. This module imports neither torch nor TensorFlow (compare's parent stays light).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

BEST_DIR = "best-model"


def kept(out: Path) -> dict[str, Any] | None:
    """The sidecar of the checkpoint kept in `out/best-model/`, or None."""
    sidecar = out / BEST_DIR / "model.json"
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def keep_best(out: Path, record: dict[str, Any]) -> bool:
    """Keep or drop the checkpoint `record` saved; True when it became the kept one."""
    saved = record.get("checkpoint")
    if not saved:
        return False
    weights = Path(saved)
    sidecar = weights.with_suffix(".json")
    accuracy = record.get("test_accuracy")
    best = kept(out)
    best_accuracy = best.get("test_accuracy") if best else None
    better = (record.get("status") == "ok" and weights.is_file() and sidecar.is_file()
              and isinstance(accuracy, (int, float))
              and (not isinstance(best_accuracy, (int, float)) or accuracy > best_accuracy))
    if not better:
        for path in (weights, sidecar):
            path.unlink(missing_ok=True)
        return False
    staging, old, target = (out / f".{BEST_DIR}.new", out / f".{BEST_DIR}.old", out / BEST_DIR)
    for folder in (staging, old):
        shutil.rmtree(folder, ignore_errors=True)
    staging.mkdir(parents=True)
    for path in (weights, sidecar):
        os.replace(path, staging / path.name)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return True


def describe(out: Path) -> str:
    """One line for the end of a study: where the kept checkpoint is and how to try it."""
    meta = kept(out)
    if meta is None:
        return "--save-model best: no run finished ok, so no checkpoint was kept"
    accuracy = meta.get("test_accuracy")
    acc = f"{accuracy:.2%}" if isinstance(accuracy, (int, float)) else "?"
    return (f"best model: {out / BEST_DIR} ({meta.get('strategy')} ×{meta.get('workers')}, "
            f"run {meta.get('run_id')}, test accuracy {acc}); try it: distbench serve "
            f"{out / BEST_DIR}")
