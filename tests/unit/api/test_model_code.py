"""A model factory passed as a callable: shipped by value into the results folder, or refused.

Command: python -m pytest tests/unit/api/test_model_code.py

The shipped module is loaded in a fresh interpreter that cannot import this test file, as a
worker could not import a notebook: what it gets back came through the pickle alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from distbench.api.model_code import CODE_DIR, pack, shipped_model
from distbench.api.settings import check_config, run_config
from distbench.core.errors import UsageError
from distbench.models.user import parse_spec, sha256_of

from helpers import with_pythonpath

WIDTH = 7  # a module-level value the factory reads: shipped with it


def helper_layers(num_classes: int) -> list[int]:
    return [WIDTH, num_classes]


def factory(input_shape, num_classes, framework):
    """Stands in for a model factory: what it returns tells what it could reach."""
    return {"shape": list(input_shape), "layers": helper_layers(num_classes), "fw": framework}


LOCK = threading.Lock()


def locked_factory(input_shape, num_classes, framework):
    with LOCK:
        return factory(input_shape, num_classes, framework)


def load_in_fresh_process(spec: str) -> object:
    """Build the factory from its spec as a worker does, call it, return its JSON output."""
    code = ("import json\nfrom distbench.models.user import load_factory, parse_spec\n"
            f"fn = load_factory(parse_spec({spec!r}))\n"
            "print(json.dumps(fn((1, 4, 4), 3, 'torch')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=with_pythonpath(), cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_callable_becomes_a_file_spec_that_loads_elsewhere(tmp_path: Path) -> None:
    out = tmp_path / "results"
    with shipped_model({"model": factory, "epochs": 1}, out) as settings:
        cfg = check_config(run_config(settings), load_strategy=False)
    spec = parse_spec(cfg.model.name)
    assert spec.function == "factory" and spec.path is not None
    assert spec.path.parent == out / CODE_DIR
    # Named by the digest of its source: the record's SHA-256 starts with the file name's.
    assert spec.path.name == f"factory-{sha256_of(spec)[:12]}.py"
    assert load_in_fresh_process(cfg.model.name) == {
        "shape": [1, 4, 4], "layers": [WIDTH, 3], "fw": "torch"}


def test_the_same_function_ships_to_the_same_file(tmp_path: Path) -> None:
    assert pack(factory) == pack(factory)
    with shipped_model({"model": factory}, tmp_path) as one, \
            shipped_model({"model": factory}, tmp_path) as two:
        assert one["model"] == two["model"]
    assert len(list((tmp_path / CODE_DIR).iterdir())) == 1


def test_a_lambda_gets_a_module_level_name(tmp_path: Path) -> None:
    with shipped_model({"model": lambda shape, n, fw: {"n": n}}, tmp_path) as settings:
        assert settings["model"].endswith(":model_factory")
    assert load_in_fresh_process(settings["model"]) == {"n": 3}


def test_an_unshippable_callable_is_refused_in_one_line_before_writing(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught, shipped_model({"model": locked_factory}, tmp_path):
        pass
    message = str(caught.value)
    assert message.startswith("model=locked_factory: cannot be shipped to the worker processes")
    assert "cannot pickle '_thread.lock' object" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model, message", [
    (lambda shape: None, "cannot be called as function(input_shape, num_classes, framework)"),
    (type("Linear", (), {"__module__": "torch.nn.modules.linear",
                         "__call__": lambda self, *a: None})(),
     "a built model; pass the function that builds it"),
])
def test_what_cannot_be_a_factory_is_refused(model: object, message: str,
                                            tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")), \
            shipped_model({"model": model}, tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_settings_refused_after_shipping_leave_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "new" / "results"
    with pytest.raises(UsageError, match="--epochs must be >= 1"), \
            shipped_model({"model": factory, "epochs": 0}, out) as settings:
        check_config(run_config(settings), load_strategy=False)
    assert list(tmp_path.iterdir()) == []
    # A folder that was there stays, with what it held.
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError), shipped_model({"model": factory, "lr": -1},
                                                  tmp_path / "kept") as settings:
        check_config(run_config(settings), load_strategy=False)
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]


def test_a_spec_string_is_left_as_it_is(tmp_path: Path) -> None:
    with shipped_model({"model": "mlp-25"}, tmp_path) as settings:
        assert settings == {"model": "mlp-25"}
    assert list(tmp_path.iterdir()) == []
