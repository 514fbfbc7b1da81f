"""Checkpoints of both frameworks: a weights file plus one JSON sidecar that says how to use it.

Command: distbench run --save-model --out results/x    (then: distbench predict results/x img.png)

The weights are the framework's own format (`model.safetensors` for PyTorch, `model.keras` for
TensorFlow), written by a callable the trainer passes in, so this module imports neither
framework. The sidecar (`model.json`) has the same keys for both, plus the few a loader of one
framework checks (`tensors`, PyTorch). Both files are staged beside their targets and moved into
place only once both are complete: a crash or a full disk leaves the previous checkpoint (or
none), never half of one or a pair that does not belong together.
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError
from distbench.models.user import is_user_model, model_file

SIDECAR = "model.json"


@dataclass(frozen=True)
class WeightsFormat:
    file: str  # the weights file's name in --out
    input_layout: str
    load_with: str


FORMATS: dict[str, WeightsFormat] = {
    "pytorch": WeightsFormat(
        "model.safetensors", "NCHW, the dataset's arrays as they are",
        "distbench predict PATH; or safetensors.torch.load_file(PATH), the state_dict of "
        "distbench.models.torch_models.build_model(...) for this sidecar's model",
    ),
    "tensorflow": WeightsFormat(
        "model.keras", "NHWC (transpose the dataset's NCHW arrays)",
        "keras.models.load_model(path)",
    ),
}


def sidecar(cfg: RunConfig, record: dict[str, Any], framework: str, *, classes: list[str],
            input_shape: tuple[int, ...], mean: list[float], std: list[float]) -> dict[str, Any]:
    """The keys every checkpoint's sidecar has, whichever framework wrote it."""
    fmt = FORMATS[framework]
    return {
        "framework": framework,
        "model": cfg.model.name,
        # A user model's code: where it was and its SHA-256, checked before it is run again.
        "model_file": model_file(cfg.model.name) if is_user_model(cfg.model.name) else None,
        "model_sha256": record.get("model_sha256"),
        "model_params": record.get("model_params"),
        "image_size": cfg.model.image_size,
        "dataset": cfg.data.name,
        "classes": list(classes),
        "input_shape": list(input_shape),
        "input_layout": fmt.input_layout,
        "normalisation": {"mean": mean, "std": std,
                          "pixels": "[0, 1]; the model normalises internally"},
        "run_id": record["run_id"],
        "strategy": cfg.strategy,
        "workers": cfg.workers,
        "test_accuracy": record["test_accuracy"],
        "load_with": fmt.load_with,
    }


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside `target` (same file system, so `os.replace` is atomic),
    removed on the way out unless it was moved into place. It keeps `target`'s suffix, which
    some writers insist on (Keras: `.keras`)."""
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def write_checkpoint(out: str | Path, meta: dict[str, Any],
                     save_weights: Callable[[Path], None]) -> Path:
    """Write `<out>/<weights>` with `save_weights(path)` and `<out>/model.json` from `meta`;
    returns the weights path. Both go into place only once both are written; any OSError (a full
    disk, no permission) is a one-line `DistbenchError` and removes what was staged, leaving the
    previous checkpoint, if any, as it was. A target that is a folder is refused before either
    move; should the sidecar's move still fail after the weights', the new weights are removed
    too: the folder then holds no weights, never weights without their sidecar."""
    out = Path(out)
    weights, side = out / FORMATS[meta["framework"]].file, out / SIDECAR
    try:
        out.mkdir(parents=True, exist_ok=True)
        with _staged(weights) as weights_tmp, _staged(side) as side_tmp:
            save_weights(weights_tmp)
            side_tmp.write_text(json.dumps(meta, indent=2) + "\n")
            for target in (weights, side):  # a file cannot replace a folder
                if target.is_dir():
                    raise IsADirectoryError(errno.EISDIR, f"{target} is a folder")
            os.replace(weights_tmp, weights)
            try:
                os.replace(side_tmp, side)
            except OSError:
                weights.unlink(missing_ok=True)
                raise
    except OSError as exc:
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        raise DistbenchError(f"cannot save the model in {out}: {reason}") from None
    return weights
