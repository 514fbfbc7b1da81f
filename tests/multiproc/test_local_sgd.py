"""`param-avg` with `--average-optimizer-state`: the optimizer state really is averaged.

Command: python -m pytest tests/multiproc/test_local_sgd.py

Two workers average their parameters after every step either way, so their weights agree in
both runs; Adam's moments agree only when the state is averaged too, since each rank's come from
its own shard's gradients. tests/probes/sitecustomize.py saves each worker's parameters and
optimizer state after training (DISTBENCH_PROBE_STATE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distbench.results.records import load_records
from distbench.strategies import missing_framework

from helpers import PROBES_DIR, TINY, run_cli, with_pythonpath


def ranks_after_training(out: Path, *flags: str) -> list[dict[str, np.ndarray]]:
    """Each rank's parameters and optimizer state after `param-avg` x2, Adam, averaging every
    step."""
    state = out / "state"
    state.mkdir(parents=True)
    env = with_pythonpath(PROBES_DIR)
    env["DISTBENCH_PROBE_STATE"] = str(state)
    proc = run_cli("run", "--strategy", "param-avg", "--workers", "2", "--sync-every", "1",
                   "--optimizer", "adam", *TINY, *flags, "--out", str(out), env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = load_records(out)
    assert record["config"]["average_optimizer_state"] == ("--average-optimizer-state" in flags)
    ranks = []
    for rank in range(2):
        with np.load(state / f"rank{rank}.npz") as arrays:
            ranks.append(dict(arrays))
    return ranks


def split(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k.startswith(prefix)}


@pytest.mark.slow
def test_average_optimizer_state_makes_the_ranks_moments_equal(tmp_path: Path) -> None:
    hint = missing_framework("param-avg")
    if hint:
        pytest.skip(hint)
    for averaged in (True, False):
        flags = ["--average-optimizer-state"] if averaged else []
        rank0, rank1 = ranks_after_training(tmp_path / str(averaged), *flags)
        moments0, moments1 = split(rank0, "state."), split(rank1, "state.")
        # Adam keeps exp_avg and exp_avg_sq for each of mlp-25's 6 parameter tensors.
        assert len(moments0) == 12 and moments0.keys() == moments1.keys()
        for name, value in split(rank0, "param.").items():
            np.testing.assert_allclose(value, rank1[name], rtol=1e-6, atol=1e-7, err_msg=name)
        differs = {k for k in moments0 if not np.allclose(moments0[k], moments1[k],
                                                          rtol=1e-6, atol=1e-9)}
        if averaged:
            assert not differs, f"moments still differ between ranks: {sorted(differs)}"
        else:
            assert differs == set(moments0), f"only {sorted(differs)} differ without the flag"
