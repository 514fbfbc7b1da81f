"""User model specs: `file.py:function` and `package.module:function`, checked before any
worker starts, built with the run's seed, and rebuilt for predict only when trusted.

Command: python -m pytest tests/unit/models/test_user_models.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from distbench.core.config import ModelConfig
from distbench.core.errors import UsageError
from distbench.models.torch_models import build_model
from distbench.models.user import check_spec, parse_spec, sha256_of, trusted_spec

USER_MODELS = Path(__file__).resolve().parents[2] / "user_models"
TINY_NET = USER_MODELS / "tiny_net.py"


def build(spec: str, seed: int = 0) -> torch.nn.Module:
    return build_model(ModelConfig(name=spec), (1, 8, 8), 3, [0.5], [0.25], seed=seed)


def test_file_and_module_forms():
    file_spec = parse_spec("nets/a.py:make")
    assert file_spec.path == Path("nets/a.py") and file_spec.function == "make"
    module_spec = parse_spec("pkg.nets:make")
    assert module_spec.module == "pkg.nets" and module_spec.path is None


@pytest.mark.parametrize("text", ["a.py", "a.py:", ":fn", "a b.c:fn", "a.py:not-a-name"])
def test_malformed_specs_are_refused(text):
    with pytest.raises(UsageError, match="model spec|neither a .py file"):
        parse_spec(text)


def test_same_seed_same_weights_another_seed_others():
    spec = f"{TINY_NET}:build"
    a, b, c = build(spec, seed=3), build(spec, seed=3), build(spec, seed=4)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(),
                                                     c.state_dict().values()))


def test_user_model_takes_uint8_and_float_pixels_alike():
    net = build(f"{TINY_NET}:build").eval()
    pixels = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(net(pixels), net(pixels.float() / 255.0), rtol=0, atol=0)


def user_package(tmp_path, monkeypatch, name: str, module: str, init: str = ""):
    """A package `name` on the Python path holding tiny_net as `module`, `init` its __init__."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(init)
    (package / f"{module}.py").write_text(TINY_NET.read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_module_form_is_imported_from_the_python_path(tmp_path, monkeypatch):
    package = user_package(tmp_path, monkeypatch, "mynets", "small")
    assert check_spec(parse_spec("mynets.small:build")) == package / "small.py"
    assert sum(p.numel() for p in build("mynets.small:build").parameters()) > 0
    sys.modules.pop("mynets.small", None)
    sys.modules.pop("mynets", None)


@pytest.mark.parametrize("spec,expected", [
    (f"{USER_MODELS}/nope.py:build", "no such file"),
    (f"{TINY_NET}:nope", "defines no function nope"),
    ("no_such_package.nets:build", "cannot find module"),
])
def test_static_checks_refuse_without_running_anything(spec, expected):
    with pytest.raises(UsageError, match=expected):
        check_spec(parse_spec(spec))


def test_a_null_byte_names_the_file_without_a_line(tmp_path):
    bad = tmp_path / "nullbyte.py"
    bad.write_bytes(b"def build(a, b, c):\n    return 1\x00\n")
    with pytest.raises(UsageError, match=rf"{bad}: SyntaxError: .*null bytes") as info:
        check_spec(parse_spec(f"{bad}:build"))
    assert "None" not in str(info.value)


def test_module_form_is_found_in_the_current_folder(tmp_path, monkeypatch):
    """As with `python -m distbench`, though the console script has no such path entry."""
    (tmp_path / "cwd_net.py").write_text(TINY_NET.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert check_spec(parse_spec("cwd_net:build")) == tmp_path / "cwd_net.py"
    assert sys.path[-1] == str(tmp_path)
    sys.modules.pop("cwd_net", None)


def test_a_failing_parent_package_is_one_line(tmp_path, monkeypatch):
    user_package(tmp_path, monkeypatch, "failing_pkg", "net", init="1 / 0\n")
    with pytest.raises(UsageError, match=r"failing_pkg.net:build: .*__init__.py:1: "
                                         r"ZeroDivisionError: division by zero") as info:
        check_spec(parse_spec("failing_pkg.net:build"))
    assert "\n" not in str(info.value)
    sys.modules.pop("failing_pkg", None)


def test_syntax_error_names_the_users_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def build(a, b, c):\n    return (\n")
    with pytest.raises(UsageError, match=rf"{bad}:\d+: SyntaxError"):
        check_spec(parse_spec(f"{bad}:build"))


@pytest.mark.parametrize("spec,expected", [
    (f"{USER_MODELS}/broken_import.py:build",
     r"broken_import.py:5: ValueError: math domain error \(--debug for the traceback\)"),
    (f"{TINY_NET}:wrong_type", "returned str for framework 'torch', expected a torch.nn.Module"),
    (f"{TINY_NET}:wrong_logits", r"output of shape \(2, 4\) on a dummy batch; expected "
                                 r"\(batch, 3\) logits"),
    (f"{TINY_NET}:one_row", r"output of shape \(1, 3\) on a dummy batch of 2; expected one "
                            r"row of logits per sample"),
    (f"{TINY_NET}:integer_logits", "output of dtype int64 on a dummy batch; expected "
                                   "floating-point logits"),
    (f"{TINY_NET}:no_parameters", "returned a torch.nn.Module with no trainable parameters"),
])
def test_building_refuses_bad_user_code_in_one_line(spec, expected):
    with pytest.raises(UsageError, match=expected) as info:
        build(spec)
    assert "\n" not in str(info.value)


def test_a_function_for_another_framework_says_so():
    with pytest.raises(UsageError, match="tiny_net.py:\\d+: ValueError: this model is PyTorch "
                                         "only, not tf"):
        from distbench.models.user import call_factory

        call_factory(parse_spec(f"{TINY_NET}:torch_only"), (1, 8, 8), 3, "tf", object, "x")


def test_predict_needs_trust_and_the_same_code(tmp_path):
    model = tmp_path / "net.py"
    model.write_text(TINY_NET.read_text())
    spec = "net.py:build"
    digest = sha256_of(parse_spec(str(model) + ":build"))
    ckpt = tmp_path / "model.json"
    with pytest.raises(UsageError, match=f"user code, {model} \\(build\\).*--trust-code"):
        trusted_spec(spec, str(model), digest, False, ckpt)
    assert trusted_spec(spec, str(model), digest, True, ckpt) == f"{model}:build"
    model.write_text(TINY_NET.read_text() + "\n# edited\n")
    with pytest.raises(UsageError, match="has changed since training"):
        trusted_spec(spec, str(model), digest, True, ckpt)
    with pytest.raises(UsageError, match="no SHA-256"):
        trusted_spec(spec, str(model), None, True, ckpt)
