"""Import hygiene of the processes users wait on: the command's planning steps load no heavy
library, and a TensorFlow worker never loads torch.

Command: python -m pytest tests/cli/test_imports.py

Each check runs in a fresh interpreter: the pytest process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from distbench.strategies import STRATEGIES, Framework, missing_framework
from distbench.system.fingerprint import MPI_WHEELS

from helpers import PROBES_DIR, TESTS_DIR, TINY, run_cli, with_pythonpath

# Frameworks and the large optional libraries: each costs seconds to import, and a planning step
# that loads one makes every command (and every cell of a study) that much slower to answer.
HEAVY = ("torch", "tensorflow", "keras", "mpi4py", "matplotlib", "pandas", "gradio", "PIL")

HELP = ("from distbench.cli.main import main\n"
        "try:\n    main({argv!r})\nexcept SystemExit as exc:\n    assert exc.code == 0")
PLANNING_STEPS = {
    "import distbench and build the parser": (
        "import distbench, distbench.cli.main, distbench.core.config, distbench.data\n"
        "distbench.cli.main.build_parser()"),
    "distbench --help": HELP.format(argv=["--help"]),
    "distbench compare --help": HELP.format(argv=["compare", "--help"]),
    "a usage error of run, answered before any launch": (
        "from distbench.cli.main import main\nassert main(['run', '--lr', '-1']) == 2"),
    "the Python API, and a usage error of it": (
        "import distbench\nassert callable(distbench.run) and callable(distbench.compare)\n"
        "try:\n    distbench.run(epoch=1)\nexcept distbench.api.UsageError:\n    pass"),
    "compare planning a study": (
        "from distbench.api.runs import compare_request\nfrom distbench.study import compare\n"
        "assert compare.make_plan(compare_request({})).slots()"),
    "report statistics and tables": (
        "import helpers\nfrom distbench.report import html, tables\n"
        "from distbench.report.analysis import analyse\nassert analyse(helpers.study_records())"),
    "launch scripts for every strategy": (
        "from distbench.launch import compose, local, multinode\n"
        "from distbench.launch.slurm import SlurmJob, sbatch_script\n"
        "from distbench.strategies import STRATEGIES\n"
        "assert all(sbatch_script(SlurmJob(name)) for name in STRATEGIES)"),
    "a record and the machine fingerprint": (
        "from distbench.core.config import RunConfig\n"
        "from distbench.results.records import make_record\nassert make_record(RunConfig())"),
    "distbench env": "from distbench.cli.main import main\nassert main(['env']) == 0",
    "the TensorFlow strategy classes": (
        "from distbench.strategies import STRATEGIES, Framework, get_strategy, missing_framework\n"
        "[get_strategy(n) for n, i in STRATEGIES.items()\n"
        " if i.framework is Framework.TENSORFLOW and missing_framework(n) is None]"),
}


# What a step may load all the same, and why.
# The fingerprint reads an MPI wheel's version from its metadata; only an MPI installed otherwise
# is loaded to be asked (mpi4py without MPI_Init).
def _installed(dist: str) -> bool:
    try:
        return bool(metadata.version(dist))
    except metadata.PackageNotFoundError:
        return False


MPI_LOADED = set() if any(map(_installed, MPI_WHEELS)) else {"mpi4py"}
ALLOWED = {"a record and the machine fingerprint": MPI_LOADED, "distbench env": MPI_LOADED}


@pytest.mark.parametrize("step", list(PLANNING_STEPS))
def test_planning_loads_no_heavy_library(step: str) -> None:
    code = (PLANNING_STEPS[step] + "\nimport json, sys\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=with_pythonpath(TESTS_DIR))
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    assert loaded <= ALLOWED.get(step, set()), f"{step} imported {sorted(loaded)}"


def test_the_check_sees_a_heavy_import() -> None:
    """The same harness on a step that does import one: the check itself can fail."""
    code = ("import numpy.linalg, json, sys\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'numpy'})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert json.loads(proc.stdout.splitlines()[-1]) == ["numpy"]


TF_ROWS = [name for name, info in STRATEGIES.items() if info.framework is Framework.TENSORFLOW]


def modules_by_process(folder: Path) -> dict[str, list[str]]:
    """'worker' / 'run' -> the modules that process had loaded when it exited."""
    out = {}
    for dump in folder.glob("*.json"):
        seen = json.loads(dump.read_text())
        role = "worker" if "worker" in seen["argv"] else "run" if "run" in seen["argv"] else None
        if role:
            out[role] = seen["modules"]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("strategy", TF_ROWS)
def test_a_tensorflow_worker_never_loads_torch(tmp_path: Path, strategy: str) -> None:
    """The real `distbench run` and the worker it starts; tests/probes/sitecustomize.py lists,
    as each process exits, what it had imported."""
    hint = missing_framework(strategy)
    if hint:
        pytest.skip(hint)
    dumps = tmp_path / "modules"
    dumps.mkdir()
    env = with_pythonpath(PROBES_DIR)
    env["DISTBENCH_PROBE_MODULES"] = str(dumps)
    proc = run_cli("run", "--strategy", strategy, *TINY, "--epochs", "1",
                   "--out", str(tmp_path / "out"), env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = modules_by_process(dumps)
    assert set(seen) == {"run", "worker"}, f"processes seen: {sorted(seen)}"
    assert "tensorflow" in seen["worker"], "the probe did not see the TensorFlow worker"
    assert "torch" not in seen["worker"]
    assert not {"torch", "tensorflow"} & set(seen["run"]), "the launching process loaded one"
