"""One checkpoint writer for both frameworks: the same sidecar keys, both files atomic, a full
disk one line and no half-written file.

Command: python -m pytest tests/unit/training/test_checkpoint_writer.py
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.core.errors import DistbenchError
from distbench.models.checkpoint import FORMATS, SIDECAR, sidecar, write_checkpoint

RECORD = {"run_id": "abc123", "test_accuracy": 0.5}


def meta(framework: str = "pytorch") -> dict:
    cfg = RunConfig(data=DataConfig("mnist-5k"), model=ModelConfig("mlp-128"))
    return sidecar(cfg, RECORD, framework, classes=["a", "b"], input_shape=(1, 28, 28),
                   mean=[0.1], std=[0.3])


def writes(content: bytes):
    def save(path: Path) -> None:
        path.write_bytes(content)

    return save


def disk_full_after(content: bytes):
    """A writer that gets part of its file out, then meets a full disk."""

    def save(path: Path) -> None:
        path.write_bytes(content[: len(content) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return save


def test_both_frameworks_share_the_sidecar_keys() -> None:
    torch_meta, tf_meta = meta("pytorch"), meta("tensorflow")
    assert set(torch_meta) == set(tf_meta)
    assert torch_meta["input_layout"] != tf_meta["input_layout"]
    assert torch_meta["normalisation"] == tf_meta["normalisation"]
    assert torch_meta["run_id"] == "abc123" and torch_meta["input_shape"] == [1, 28, 28]


@pytest.mark.parametrize("framework", list(FORMATS))
def test_writes_weights_and_sidecar_and_nothing_else(tmp_path: Path, framework: str) -> None:
    out = tmp_path / "new" / "folder"
    weights = write_checkpoint(out, {**meta(framework), "extra": 1}, writes(b"weights"))
    assert weights == out / FORMATS[framework].file and weights.read_bytes() == b"weights"
    assert json.loads((out / SIDECAR).read_text())["extra"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted([weights.name, SIDECAR])


def test_full_disk_while_saving_weights_is_one_line_and_keeps_the_old(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, meta(), writes(b"old weights"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(DistbenchError, match=r"No space left on device$") as err:
        write_checkpoint(tmp_path, {**meta(), "run_id": "new"}, disk_full_after(b"x" * 100))
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_full_disk_while_saving_the_sidecar_leaves_no_half_pair(tmp_path: Path,
                                                                monkeypatch) -> None:
    def write_text(self: Path, text: str, *args, **kwargs) -> int:
        self.write_bytes(text[:10].encode())
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(DistbenchError, match="No space left on device"):
        write_checkpoint(tmp_path, meta(), writes(b"new weights"))
    assert list(tmp_path.iterdir()) == []  # neither file, nor a staged one


def test_interrupted_save_leaves_nothing(tmp_path: Path) -> None:
    def interrupted(path: Path) -> None:
        path.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path, meta(), interrupted)
    assert list(tmp_path.iterdir()) == []


def test_the_writer_imports_no_framework_and_no_dataset() -> None:
    code = ("import sys, distbench.models.checkpoint; "
            "bad = {'torch', 'tensorflow', 'keras', 'distbench.data'} & set(sys.modules); "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
