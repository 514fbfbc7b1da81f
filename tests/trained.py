"""One small trained checkpoint per test session, made through the real CLI and shared by the
predict and serve tests (training is the slow part; every test copies it before changing it)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from distbench.data import Dataset, load_dataset

from helpers import run_cli

TRAIN = ["run", "--dataset", "mnist-5k", "--model", "mlp-128", "--epochs", "1",
         "--batch-size", "128", "--warmup-steps", "1", "--calibration-steps", "0",
         "--no-progress", "--save-model"]


@functools.cache
def trained_checkpoint() -> Path:
    """The folder holding model.safetensors and model.json of mlp-128 after one mnist-5k epoch."""
    root = Path(tempfile.mkdtemp(prefix="distbench-trained-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    proc = run_cli(*TRAIN, "--out", str(root / "run"), timeout=300)
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
def mnist_5k() -> Dataset:
    return load_dataset("mnist-5k")


def write_test_images(folder: Path, count: int, start: int = 0) -> list[tuple[Path, str]]:
    """Test-set digits as image files, in the forms users have: 28x28 grayscale PNG, enlarged
    RGB PNG, and JPEG; returns (path, true class) pairs."""
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
