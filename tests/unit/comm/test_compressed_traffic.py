"""What compressed runs send, counted from the model's shapes, and how the projection uses it."""

from __future__ import annotations

import pytest
import torch
from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import _should_compress

from distbench.comm.cost_model import Link, ring_allreduce_s
from distbench.comm.project import Workload, project, workloads_from_records
from distbench.core.config import ModelConfig
from distbench.core.errors import UsageError
from distbench.models.torch_models import build_model
from distbench.strategies.wire import POWERSGD_MIN_COMPRESSION_RATE, wire_bytes

from helpers import projection_record

LINK = Link(alpha_s=1e-5, beta_Bps=1e8)


def _shapes(name: str) -> list[tuple[int, ...]]:
    net = build_model(ModelConfig(name), (1, 28, 28), 10, [0.0], [1.0])
    return [tuple(p.shape) for p in net.parameters()]


@pytest.mark.parametrize("compression,expected", [("none", 4), ("fp16", 2), ("bf16", 2)])
def test_casts_send_elements_of_their_width(compression: str, expected: int) -> None:
    shapes = _shapes("mlp-128")
    numel = sum(torch.Size(s).numel() for s in shapes)
    assert wire_bytes(compression, shapes) == [numel * expected]


@pytest.mark.parametrize("model", ["mlp-128", "cnn"])
@pytest.mark.parametrize("rank", [1, 4])
def test_powersgd_counts_follow_torchs_own_rule(model: str, rank: int) -> None:
    shapes = _shapes(model)
    uncompressed = p = q = 0
    for shape in shapes:
        numel = torch.Size(shape).numel()
        rows = shape[0]
        if len(shape) >= 2 and _should_compress(rows, numel // rows, rank,
                                                POWERSGD_MIN_COMPRESSION_RATE)[0]:
            p, q = p + rows * rank, q + numel // rows * rank
        else:
            uncompressed += numel
    assert wire_bytes("powersgd", shapes, rank) == [4 * n for n in (uncompressed, p, q) if n]
    assert sum(wire_bytes("powersgd", shapes, rank)) < sum(wire_bytes("none", shapes)) / 2


def test_projection_sends_the_compressed_payloads() -> None:
    g = 4_000_000
    plain = Workload("ddp", 2, 0.01, g)
    half = Workload("ddp+fp16", 2, 0.01, g, wire_bytes=[g // 2])
    three = Workload("ddp+powersgd", 2, 0.01, g, wire_bytes=[1000, 2000, 3000])
    for n in (2, 8):
        comm = {w.label: next(r for r in project(w, LINK, [n]) if r.workers == n).comm_s
                for w in (plain, half, three)}
        assert comm["ddp"] == pytest.approx(ring_allreduce_s(g, n, LINK))
        assert comm["ddp+fp16"] == pytest.approx(ring_allreduce_s(g / 2, n, LINK))
        assert comm["ddp+powersgd"] == pytest.approx(
            sum(ring_allreduce_s(b, n, LINK) for b in (1000, 2000, 3000)))


def test_records_group_by_compression_and_carry_its_bytes() -> None:
    exact = projection_record("ddp", 2, 1.0, 0.1, grad_bytes=400_000)
    fp16 = {**projection_record("ddp", 2, 1.0, 0.05, grad_bytes=400_000), "compression": "fp16"}
    psgd = {**projection_record("ddp", 2, 1.0, 0.02, grad_bytes=400_000), "compression": "powersgd",
            "wire_bytes": [1040, 3136, 512]}
    workloads, _ = workloads_from_records([exact, fp16, psgd])
    by_label = {w.label.split(" ×")[0]: w for w in workloads}
    assert by_label["ddp"].wire_bytes is None
    assert by_label["ddp+fp16"].wire_bytes == [200_000]
    assert by_label["ddp+powersgd"].wire_bytes == [1040, 3136, 512]


def test_a_powersgd_record_without_its_bytes_is_refused() -> None:
    psgd = {**projection_record("ddp", 2, 1.0, 0.02, grad_bytes=400_000), "compression": "powersgd"}
    with pytest.raises(UsageError, match="stores no wire_bytes"):
        workloads_from_records([psgd])
