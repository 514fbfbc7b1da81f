"""The user's own model: `--model path/to/file.py:function` or `--model package.module:function`.

The function is called as `function(input_shape, num_classes, framework)` with the dataset's
(C, H, W) (after `--image-size`), the number of classes and `"torch"` or `"tf"`, and returns a
`torch.nn.Module` or a `keras.Model` that maps raw pixels (normalised by distbench first, as for
the named models) to `num_classes` logits. The loss is cross-entropy over those logits.

Two stages, so that bad input is refused before any worker starts where that is possible:
`check_spec` runs in the launching process without executing the user's code (the file exists,
parses and defines the function; the module can be found); `load_factory` imports it in the
worker, and `check_dummy_batch` runs one batch of zeros before training. The spec's SHA-256 (of
the file, or of the module's source) goes into the record and the checkpoint sidecar; `predict`
and `serve` rebuild such a model only with `--trust-code` and only while the hash still
matches.

This module imports no framework: the framework modules call it with their own model class.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distbench.core.errors import UsageError, debugging


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `--model` value that names user code: a file or a module, and a function."""

    text: str  # as the user wrote it; stored in the record
    function: str
    path: Path | None = None  # file form
    module: str | None = None  # package.module form

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else str(self.module)


def is_user_model(name: str) -> bool:
    """Built-in models have plain names; a spec always has `:function`."""
    return ":" in name


def parse_spec(text: str) -> ModelSpec:
    """`file.py:fn` (any value whose left side ends in .py or holds a path separator) or
    `pkg.mod:fn`; anything else is refused with the forms spelled out."""
    where, _, function = text.rpartition(":")
    forms = "use path/to/file.py:function or package.module:function"
    if not where or not function.isidentifier():
        raise UsageError(f"--model {text}: not a model spec; {forms}")
    if where.endswith(".py") or "/" in where or os.sep in where:
        return ModelSpec(text, function, path=Path(where).expanduser())
    if not all(part.isidentifier() for part in where.split(".")):
        raise UsageError(f"--model {text}: '{where}' is neither a .py file nor a module; {forms}")
    return ModelSpec(text, function, module=where)


def search_current_folder() -> None:
    """Let `package.module` specs be found in the current folder, as the README promises
    ("importable from where you run distbench"): `python -m distbench` has that folder on the
    path, but the `distbench` console script and the workers of torchrun or mpiexec do not. It
    goes last, unlike with `python -m`, so that a file there never shadows a module distbench
    itself imports."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


def _module_file(spec: ModelSpec) -> Path:
    """The module's source file, found without running the module itself (its parent packages'
    `__init__` do run, as for any import, and may fail as the user's code)."""
    search_current_folder()
    try:
        found = importlib.util.find_spec(spec.module or "")
    except (ImportError, ValueError) as exc:
        raise UsageError(f"--model {spec.text}: cannot find module {spec.module} ({exc})") from None
    except Exception as exc:  # a parent package's `__init__` failed: the user's code
        raise _user_error(spec, exc, None) from exc
    if found is None:
        raise UsageError(f"--model {spec.text}: no module named {spec.module} in the current "
                         f"folder or on the Python path (install it, or run from the folder "
                         f"that holds it)")
    if not found.origin or not found.origin.endswith(".py"):
        raise UsageError(f"--model {spec.text}: {spec.module} is not a Python source module")
    return Path(found.origin)


def source_file(spec: ModelSpec) -> Path:
    return spec.path if spec.path is not None else _module_file(spec)


def check_spec(spec: ModelSpec) -> Path:
    """The checks that need no execution of the user's code; returns the source file."""
    path = source_file(spec)
    if not path.is_file():
        raise UsageError(f"--model {spec.text}: no such file {path}")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:  # a null byte has no line: then the file alone
        where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
        raise UsageError(f"--model {spec.text}: {where}: SyntaxError: {exc.msg}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {spec.text}: cannot read {path} ({exc})") from None
    if spec.function not in _top_level_names(tree):
        raise UsageError(f"--model {spec.text}: {path} defines no function {spec.function}")
    return path


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def sha256_of(spec: ModelSpec) -> str:
    return hashlib.sha256(source_file(spec).read_bytes()).hexdigest()


def _user_error(spec: ModelSpec, exc: BaseException, path: Path | None) -> UsageError:
    """The user's own error line: the deepest frame in their file (in any real file when the
    file is not known yet: a package's `__init__` run while looking for the module), then the
    exception."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if (Path(f.filename).resolve() == path.resolve() if path is not None
                  else not f.filename.startswith("<"))]
    where = f"{path or frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    error = UsageError(f"--model {spec.text}: {where}{type(exc).__name__}: {_first_line(exc)}"
                       .rstrip(": ")
                       + (" (--debug for the traceback)" if not debugging() else ""))
    error.__cause__ = exc
    return error


def load_factory(spec: ModelSpec) -> Callable[..., Any]:
    """Import the user's code (this runs it) and return the function."""
    path = check_spec(spec)
    try:
        if spec.module is not None:
            module = importlib.import_module(spec.module)
        else:
            name = f"distbench_user_model_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module  # dataclasses and pickling look the module up by name
            loader_spec.loader.exec_module(module)
    except Exception as exc:
        raise _user_error(spec, exc, path) from exc
    factory = getattr(module, spec.function, None)
    if not callable(factory):
        raise UsageError(f"--model {spec.text}: {spec.function} in {path} is not callable")
    return factory


def call_factory(spec: ModelSpec, input_shape: tuple[int, int, int], num_classes: int,
                 framework: str, expected: type, expected_name: str) -> Any:
    """`function(input_shape, num_classes, framework)`, checked to return `expected`."""
    factory = load_factory(spec)
    path = source_file(spec)
    try:
        model = factory(tuple(input_shape), num_classes, framework)
    except Exception as exc:
        raise _user_error(spec, exc, path) from exc
    if not isinstance(model, expected):
        raise UsageError(f"--model {spec.text}: returned {type(model).__name__} for framework "
                         f"'{framework}', expected a {expected_name}")
    check_trainable(spec, model, expected_name)
    return model


def check_trainable(spec: ModelSpec, model: Any, expected_name: str) -> None:
    """Refuse a model with nothing to train (the optimizer would refuse it in every worker),
    where that is known: at once for a torch module or a built Keras model; a Keras model built
    by its first call is checked again after its dummy batch."""
    try:
        trainable = _trainable_tensors(model)
    except Exception as exc:
        raise _user_error(spec, exc, source_file(spec)) from exc
    if trainable == 0:
        raise UsageError(f"--model {spec.text}: returned a {expected_name} with no trainable "
                         f"parameters, so there is nothing to train")


def _trainable_tensors(model: Any) -> int | None:
    """How many trainable tensors `model` holds, where that is known before its first call: a
    torch module's parameters (lazy ones included), a built Keras model's trainable weights.
    None for a Keras model built only by its first call."""
    if callable(getattr(model, "parameters", None)):
        return sum(1 for p in model.parameters() if p.requires_grad)
    if getattr(model, "built", False):
        return len(model.trainable_weights)
    return None


# What cross-entropy takes as logits, in both frameworks.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_dummy_batch(spec: ModelSpec, forward: Callable[[], Any], batch_shape: tuple[int, ...],
                      num_classes: int, layout: str = "") -> None:
    """`forward()` runs the model on one batch of zeros of `batch_shape`: it must not fail and
    must give floating-point (batch, num_classes) logits, one row per sample; otherwise
    cross-entropy fails inside training, in every worker. Each framework supplies its own
    forward."""
    try:
        out = forward()
    except Exception as exc:
        raise UsageError(f"--model {spec.text}: fails on a dummy batch of shape {batch_shape}"
                         f"{layout}: {type(exc).__name__}: {_first_line(exc)}") from exc
    shape = tuple(getattr(out, "shape", ()))
    if len(shape) != 2 or shape[1] != num_classes:
        raise UsageError(f"--model {spec.text}: output of shape {shape} on a dummy batch; "
                         f"expected (batch, {num_classes}) logits, one per class")
    if shape[0] != batch_shape[0]:
        raise UsageError(f"--model {spec.text}: output of shape {shape} on a dummy batch of "
                         f"{batch_shape[0]}; expected one row of logits per sample")
    dtype = _dtype_name(out)
    if dtype not in FLOAT_DTYPES:
        raise UsageError(f"--model {spec.text}: output of dtype {dtype} on a dummy batch; "
                         f"expected floating-point logits ({', '.join(FLOAT_DTYPES)})")


def _dtype_name(out: Any) -> str:
    """`float32` for a torch, TensorFlow or NumPy-like tensor alike (a torch dtype has no name,
    only `torch.float32`)."""
    dtype = getattr(out, "dtype", None)
    return str(getattr(dtype, "name", dtype)).removeprefix("torch.")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def model_file(text: str) -> str | None:
    """A file spec's file as an absolute path, for the checkpoint sidecar: `predict` and `serve`
    then find it from any working directory."""
    spec = parse_spec(text)
    return str(spec.path.resolve()) if spec.path is not None else None


def trusted_spec(text: str, recorded_file: str | None, recorded_sha256: object,
                 trust_code: bool, checkpoint: Path) -> str:
    """The spec that rebuilds a checkpoint's user model, once the user has said they trust the
    code (rebuilding runs it) and the code is the one the weights were trained with."""
    spec = parse_spec(text)
    if spec.path is not None and recorded_file:
        spec = ModelSpec(f"{recorded_file}:{spec.function}", spec.function,
                         path=Path(recorded_file))
    where = f"{spec.where} ({spec.function})"
    if not trust_code:
        raise UsageError(f"{checkpoint}: the model is user code, {where}; rebuilding it runs "
                         "that code: add --trust-code if you trust it")
    path = check_spec(spec)
    if not isinstance(recorded_sha256, str):
        raise UsageError(f"{checkpoint}: the sidecar has no SHA-256 of {path}, so the code "
                         "cannot be checked against the weights; retrain to save it again")
    current = sha256_of(spec)
    if current != recorded_sha256:
        raise UsageError(f"{path} has changed since training (SHA-256 {current[:12]}, "
                         f"trained with {recorded_sha256[:12]}); restore that file or retrain")
    return spec.text
