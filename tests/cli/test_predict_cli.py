"""`distbench predict` as a user runs it: a checkpoint trained through the CLI classifies image
files well, prints the documented formats, and a corrupt checkpoint is one line.

Command: python -m pytest tests/cli/test_predict_cli.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from distbench.serving.predict import load_checkpoint, load_image

from helpers import copy_checkpoint, run_cli, trained_checkpoint, write_test_images

LINE = re.compile(r"^(?P<image>.+): (?P<top>.+ \(\d+\.\d%\)(, .+ \(\d+\.\d%\)){2})$")
PAIR = re.compile(r"(\S+) \((\d+\.\d)%\)")



def parse_line(line: str) -> tuple[str, list[tuple[str, float]]]:
    match = LINE.match(line)
    assert match, f"not '<image>: c (p%), c (p%), c (p%)': {line!r}"
    return match["image"], [(c, float(p)) for c, p in PAIR.findall(match["top"])]



def test_predict_text_accuracy_and_bad_images(tmp_path: Path) -> None:
    """One line per image; a bad image costs one error line and exit 1, the others still print."""
    images = write_test_images(tmp_path / "images", 45)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text, not pixels\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    paths = [str(p) for p, _ in images]
    proc = run_cli("predict", str(trained_checkpoint() / "model.safetensors"),
                   *paths[:20], str(not_image), *paths[20:], str(empty))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"distbench: error: {not_image}: not an image (Pillow cannot identify its format)",
        f"distbench: error: {empty}: empty file (0 bytes), not an image",
    ]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(images)
    correct = 0
    for line, (path, truth) in zip(lines, images, strict=True):
        image, top = parse_line(line)
        assert image == str(path)
        assert len(top) == 3 and len({c for c, _ in top}) == 3
        probs = [p for _, p in top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.2
        correct += top[0][0] == truth
    # Chance is 10%; one epoch of mlp-128 reaches about 85% on this test set.
    assert correct / len(images) >= 0.6, proc.stdout



def test_predict_json_matches_the_library(tmp_path: Path) -> None:
    images = [p for p, _ in write_test_images(tmp_path / "images", 3)]
    folder = trained_checkpoint()
    proc = run_cli("predict", str(folder), *map(str, images), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    sidecar = json.loads((folder / "model.json").read_text())
    assert doc["run_id"] == sidecar["run_id"] and doc["model"] == "mlp-128"
    assert doc["strategy"] == "single" and doc["test_accuracy"] == sidecar["test_accuracy"]
    assert doc["checkpoint"].endswith("model.safetensors")
    assert [p["image"] for p in doc["predictions"]] == list(map(str, images))
    ckpt = load_checkpoint(folder)
    for path, pred in zip(images, doc["predictions"], strict=True):
        assert [sorted(t) for t in pred["top"]] == [["class", "probability"]] * 3
        probs = ckpt.probabilities(load_image(path, ckpt.input_shape)[None])[0]
        best = np.argsort(-probs)[:3]
        assert [t["class"] for t in pred["top"]] == [ckpt.classes[i] for i in best]
        assert [t["probability"] for t in pred["top"]] == pytest.approx(probs[best], abs=1e-6)



def test_predict_corrupt_checkpoint_is_one_line(tmp_path: Path) -> None:
    folder = copy_checkpoint(tmp_path / "ckpt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    (image, _), = write_test_images(tmp_path, 1)
    proc = run_cli("predict", str(weights), str(image))
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"distbench: error: {weights}: not a readable safetensors file")
    assert "corrupt or truncated" in line
