"""A model factory passed as a Python callable (`distbench.run(model=my_factory)`), shipped.

Command: python -m pytest tests/unit/api/test_model_code.py

Workers are separate processes (spawned by the launcher, or by compare's `distbench run`), and a
function defined in a notebook or a script lives in that process's `__main__`, which no worker can
import. So the function is serialised by value with cloudpickle (its code, defaults, closure and
the globals it uses; the module it comes from too, when that is the user's own file rather than an
installed package) into a small module under the results folder,
`<out>/model-code/<name>-<sha12>.py`, which loads it again. The run's model then is the ordinary
file spec `<that file>:<name>`: checked before any worker starts, its SHA-256 recorded, rebuilt
by `predict --trust-code`, exactly like a file the user wrote; compare's configs and its
equivalent command name it the same way.

A callable that cannot be pickled (it closes over a lock, an open file, a live connection) is
refused in one line that says why, before anything is written.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import inspect
import keyword
import platform
import sys
import sysconfig
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from distbench.core.errors import DistbenchError, UsageError
from distbench.system.files import write_whole

CODE_DIR = "model-code"
# Where a built model comes from: passing one instead of the factory that builds it is refused.
FRAMEWORK_MODULES = ("torch", "keras", "tensorflow", "tf_keras")
DUMMY_CALL = ((1, 28, 28), 10, "torch")
LOADER = '''"""The model factory `{name}`, shipped by value by distbench.

distbench calls {name}(input_shape, num_classes, framework) in every worker. Pickled with
cloudpickle {version} on Python {python}: it loads on the same Python minor version.
"""

import base64

import cloudpickle

{name} = cloudpickle.loads(base64.b64decode(
{payload}
))
'''


@dataclass(frozen=True)
class ModelCode:
    """A factory pickled into the source of a module that defines it again under `name`."""

    name: str
    source: str

    @property
    def file_name(self) -> str:
        digest = hashlib.sha256(self.source.encode()).hexdigest()
        return f"{self.name}-{digest[:12]}.py"


def _describe(factory: Any) -> str:
    return str(getattr(factory, "__qualname__", None) or type(factory).__name__)


def _name_of(factory: Any) -> str:
    """The function's own name where it can name a module-level variable."""
    name = str(getattr(factory, "__name__", ""))
    return name if name.isidentifier() and not keyword.iskeyword(name) else "model_factory"


def _user_module(factory: Any) -> ModuleType | None:
    """The module `factory` was defined in, when it is the user's own file: not `__main__`
    (cloudpickle ships that by value already), not the standard library or an installed
    package (every worker imports those itself)."""
    module = sys.modules.get(str(getattr(factory, "__module__", "") or ""))
    file = getattr(module, "__file__", None)
    if module is None or module.__name__ == "__main__" or not file:
        return None
    paths = sysconfig.get_paths()
    installed = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    where = Path(file).resolve()
    return None if any(where.is_relative_to(p) for p in installed) else module


def check_factory(factory: Callable[..., Any]) -> None:
    """Refuse, in one line, what cannot be a factory: a built model, or a callable that does
    not take (input_shape, num_classes, framework)."""
    what = _describe(factory)
    if any(str(getattr(c, "__module__", "")).split(".")[0] in FRAMEWORK_MODULES
           for c in type(factory).__mro__):
        raise UsageError(f"model={what}: a built model; pass the function that builds it, "
                         "called as function(input_shape, num_classes, framework)")
    try:
        inspect.signature(factory).bind(*DUMMY_CALL)
    except TypeError as exc:
        raise UsageError(f"model={what}: cannot be called as function(input_shape, num_classes, "
                         f"framework) ({exc})") from None
    except ValueError:  # no signature to read (some builtins): the worker's call will tell
        pass


def pack(factory: Callable[..., Any]) -> ModelCode:
    """The factory pickled by value, or one line saying why it cannot be."""
    import cloudpickle

    check_factory(factory)
    module = _user_module(factory)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)
    try:
        blob = cloudpickle.dumps(factory)
    except Exception as exc:  # whatever the pickled objects raise: the user's objects
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise UsageError(
            f"model={_describe(factory)}: cannot be shipped to the worker processes, cloudpickle "
            f"failed ({type(exc).__name__}: {reason}); create what it holds inside the function, "
            "or save it in a file and pass model='path/to/file.py:function'") from None
    finally:
        if module is not None:
            cloudpickle.unregister_pickle_by_value(module)
    name = _name_of(factory)
    payload = "\n".join(f'    "{line}"' for line in
                        textwrap.wrap(base64.b64encode(blob).decode(), 88))
    return ModelCode(name, LOADER.format(name=name, version=cloudpickle.__version__,
                                         python=platform.python_version(), payload=payload))


def _missing_folders(folder: Path) -> list[Path]:
    """The folders `mkdir(parents=True)` creates for `folder`, innermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _named_by_a_record(out: Path, spec: str) -> bool:
    from distbench.results.records import RUNS_FILE, load_records

    return (out / RUNS_FILE).is_file() and any(r.get("model") == spec
                                               for r in load_records(out / RUNS_FILE))


@contextlib.contextmanager
def shipped_model(settings: Mapping[str, Any], out: Path) -> Iterator[dict[str, Any]]:
    """`settings`, with a callable `model` replaced by the spec of its code shipped into `out`.

    The spec's file must exist to be checked, so it is written first. A `DistbenchError` raised
    inside the block removes what was written unless a record names the code (a run that failed
    is recorded, and its record keeps pointing at the code): a refused call, whether its
    settings or the worker's check of the model refused it, leaves nothing behind.
    """
    factory = settings.get("model")
    if not callable(factory):
        yield dict(settings)
        return
    code = pack(factory)
    path = out / CODE_DIR / code.file_name
    made = _missing_folders(path.parent) + ([] if path.exists() else [path])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_whole(path, code.source)
    spec = f"{path}:{code.name}"
    try:
        yield {**settings, "model": spec}
    except DistbenchError:
        if _named_by_a_record(out, spec):
            raise
        for written in sorted(made, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                written.unlink() if written.is_file() else written.rmdir()
        raise
