"""The strategy registry: optional frameworks, baselines, and worker-count rules, read without
importing a framework.

Command: python -m pytest tests/unit/strategies/test_registry.py
"""

from __future__ import annotations

import importlib.util

import pytest

from distbench.cli.main import main
from distbench.core.errors import DistbenchError, UsageError
from distbench.strategies import (
    STRATEGIES,
    Framework,
    available_strategies,
    check_workers,
    get_strategy,
    missing_framework,
    strategy_info,
)

from helpers import TINY


def test_missing_tensorflow_is_one_line_with_the_install_hint(monkeypatch, capsys, tmp_path):
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name.split(".")[0] == "tensorflow" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    hint = 'strategy tf-mirrored needs tensorflow: pip install "distbench[tf]"'
    assert missing_framework("tf-mirrored") == hint
    with pytest.raises(DistbenchError, match=r'pip install "distbench\[tf\]"'):
        get_strategy("tf-custom")
    tf_rows = {n for n, info in STRATEGIES.items() if info.framework is Framework.TENSORFLOW}
    assert tf_rows and not tf_rows & set(available_strategies())
    assert "single" in available_strategies()

    code = main(["run", "--strategy", "tf-single", *TINY, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [f"distbench: error: {hint.replace('mirrored', 'single')}"]


def test_a_baseline_runs_one_worker_only() -> None:
    for name, info in STRATEGIES.items():
        if info.single_worker:
            check_workers(name, 1)
            with pytest.raises(UsageError, match="--workers 1"):
                check_workers(name, 2)
        else:
            check_workers(name, 3)


def test_an_unknown_strategy_lists_the_registered_ones() -> None:
    with pytest.raises(UsageError) as exc:
        strategy_info("sideways-sgd")
    assert all(name in str(exc.value) for name in STRATEGIES)
