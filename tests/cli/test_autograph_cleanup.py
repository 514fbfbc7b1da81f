"""A worker removes TensorFlow autograph's module files before it ends by `os._exit` (which
skips autograph's own atexit cleanup), and nothing else. The real sequence, forked and exec'd TF
workers, is in tests/multiproc/test_warm_start.py.

Command: python -m pytest tests/cli/test_autograph_cleanup.py
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import pytest

from distbench.cli.worker import AUTOGRAPH_PREFIX, remove_autograph_files


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, file: object,
                cached: object = None) -> None:
    module = types.ModuleType(name)
    module.__file__ = file  # type: ignore[assignment]
    module.__cached__ = cached  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)


def test_only_autograph_files_in_the_temp_folder_are_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp, elsewhere = tmp_path / "temp", tmp_path / "elsewhere"
    (temp / "__pycache__").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    ours = temp / f"{AUTOGRAPH_PREFIX}abc.py"
    ours_pyc = temp / "__pycache__" / f"{AUTOGRAPH_PREFIX}abc.cpython-311.pyc"
    outside = elsewhere / f"{AUTOGRAPH_PREFIX}out.py"
    not_autograph = temp / f"{AUTOGRAPH_PREFIX}other.py"  # a module under another name
    target = elsewhere / "precious.py"
    link = temp / f"{AUTOGRAPH_PREFIX}link.py"
    for path in (ours, ours_pyc, outside, not_autograph, target):
        path.write_text("x = 1\n")
    link.symlink_to(target)
    loop = temp / "loop"
    loop.symlink_to(loop)
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}abc", str(ours), str(ours_pyc))
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}out", str(outside))
    fake_module(monkeypatch, "user_module", str(not_autograph))
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}link", str(link))
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}gone", str(temp / f"{AUTOGRAPH_PREFIX}gone.py"))
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}loop", str(loop / f"{AUTOGRAPH_PREFIX}l.py"))
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}nul", f"{temp}/{AUTOGRAPH_PREFIX}\0.py")
    fake_module(monkeypatch, f"{AUTOGRAPH_PREFIX}none", None)

    remove_autograph_files()

    assert not ours.exists() and not ours_pyc.exists()
    assert not link.is_symlink() and target.read_text() == "x = 1\n"  # the link, not its target
    assert outside.exists() and not_autograph.exists()
