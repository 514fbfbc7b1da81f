"""The projection's traffic and memory per rank for the sharded strategies (registry facts)."""

from __future__ import annotations

import pytest

from distbench.comm.cost_model import (
    Link,
    ring_allreduce_s,
    state_bytes_per_rank,
    step_comm_s,
)
from distbench.comm.project import Workload, project
from distbench.strategies import Sharding

LINK = Link(alpha_s=0.0, beta_Bps=1e9)
G = 4e8  # 100 M fp32 parameters


@pytest.mark.parametrize("n", [2, 8, 64])
def test_traffic(n):
    half = (n - 1) / n * G / LINK.beta_Bps
    assert step_comm_s(Sharding.NONE, [G], n, LINK) == pytest.approx(2 * half)
    assert step_comm_s(Sharding.OPTIMIZER, [G], n, LINK) == pytest.approx(3 * half)
    assert step_comm_s(Sharding.FULL, [G], n, LINK) == pytest.approx(3 * half)
    assert step_comm_s(Sharding.NONE, [G], n, LINK) == ring_allreduce_s(G, n, LINK)


@pytest.mark.parametrize("n", [1, 4, 64])
def test_memory_is_zero_paper_accounting_for_adam(n):
    psi = G / 4
    assert state_bytes_per_rank(Sharding.NONE, G, n, 2 * G) == pytest.approx(16 * psi)
    assert state_bytes_per_rank(Sharding.OPTIMIZER, G, n, 2 * G) == pytest.approx(
        8 * psi + 8 * psi / n)
    assert state_bytes_per_rank(Sharding.FULL, G, n, 2 * G) == pytest.approx(16 * psi / n)


def test_projection_rows_carry_state_per_rank():
    w = Workload("fsdp", workers=2, compute_s=1.0, grad_bytes=int(G), strategy="fsdp",
                 sharding=Sharding.FULL)
    rows = {r.workers: r for r in project(w, LINK, [8])}
    assert rows[8].state_bytes == pytest.approx(4 * G / 8)
    assert rows[1].comm_s == 0.0
