"""`write_checkpoint` is all or nothing: a target it cannot take leaves no weights behind.

Command: python -m pytest tests/unit/models/test_checkpoint.py

(The writer's other tests, shared with the trainers, are tests/unit/training/
test_checkpoint_writer.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distbench.core.errors import DistbenchError
from distbench.models.checkpoint import SIDECAR, write_checkpoint

META = {"framework": "pytorch", "run_id": "abc123"}


def save(path: Path) -> None:
    path.write_bytes(b"weights")


def test_a_folder_in_the_sidecars_place_leaves_no_weights(tmp_path: Path) -> None:
    (tmp_path / SIDECAR).mkdir()
    with pytest.raises(DistbenchError, match="model.json is a folder") as info:
        write_checkpoint(tmp_path, META, save)
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(tmp_path)) == [SIDECAR]  # nothing written, nothing staged left


def test_a_failed_sidecar_move_takes_the_new_weights_back(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def refuse_the_sidecar(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == SIDECAR:
            raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_the_sidecar)
    with pytest.raises(DistbenchError, match="Permission denied"):
        write_checkpoint(tmp_path, META, save)
    assert os.listdir(tmp_path) == []
