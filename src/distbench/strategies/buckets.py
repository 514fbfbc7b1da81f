"""Flat buffers over groups of tensors: pack gradients or parameters, reduce once, scatter back.

One collective over a contiguous buffer costs far less than one per tensor. Gradients are scaled
by 1/world as they are packed, so a summing all-reduce leaves their average. `mpi` uses a single
bucket of every gradient, `custom` buckets of `--bucket-mb`, `param-avg` one bucket of parameters
(and optionally optimizer state).
"""

from __future__ import annotations

import torch
from torch import nn


class FlatBucket:
    """A reused contiguous buffer standing for `tensors`, in order."""

    def __init__(self, tensors: list[torch.Tensor], device: torch.device | None = None) -> None:
        self.tensors = tensors
        self.buffer = torch.zeros(sum(t.numel() for t in tensors), dtype=tensors[0].dtype,
                                  device=device or tensors[0].device)
        self.views = []
        offset = 0
        for t in tensors:
            self.views.append(self.buffer[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def pack(self, sources: list[torch.Tensor | None], scale: float = 1.0) -> torch.Tensor:
        """Copy `scale * sources` (None counts as zeros) into the buffer and return it.

        Scaling by 1/world while packing makes the summing collective yield the average with no
        extra pass over the buffer afterwards."""
        for view, src in zip(self.views, sources):
            if src is None:
                view.zero_()
            elif scale == 1.0:
                view.copy_(src)
            else:
                torch.mul(src, scale, out=view)
        return self.buffer

    def copy_back(self) -> None:
        """Write the (reduced) buffer back into the tensors it stands for."""
        for view, t in zip(self.views, self.tensors):
            t.copy_(view)


# --compression for the strategies that reduce their own buckets: the dtype that crosses the wire.
WIRE_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class GradBuckets:
    """Gradients of `model` in buckets of at most `cap_bytes`, in reverse registration order
    (roughly the order backward produces them, so early buckets can be reduced first).

    With a `wire` dtype (fp16/bf16 compression), each packed bucket is cast into a reused buffer
    of that dtype, which is what the collective sums, and cast back by `finish`: half the
    bytes on the wire, gradients rounded to the wire's precision (the sum too). Packing has
    already divided by the world size, so the sum stays in the half-precision range."""

    def __init__(self, model: nn.Module, cap_bytes: float, device: torch.device | None = None,
                 wire: torch.dtype | None = None):
        params = [p for p in model.parameters() if p.requires_grad][::-1]
        groups: list[list[nn.Parameter]] = [[]]
        size = 0
        for p in params:
            nbytes = p.numel() * p.element_size()
            if groups[-1] and size + nbytes > cap_bytes:
                groups.append([])
                size = 0
            groups[-1].append(p)
            size += nbytes
        self.params = groups
        self.buckets = [FlatBucket([p.detach() for p in g], device) for g in groups]
        self.wires = [b.buffer.to(wire) if wire is not None else None for b in self.buckets]

    def pack(self, index: int, world: int) -> torch.Tensor:
        """Bucket `index` holding this rank's gradients / world: summing it averages them (in
        the wire dtype, where one is set)."""
        packed = self.buckets[index].pack([p.grad for p in self.params[index]], 1.0 / world)
        wire = self.wires[index]
        return packed if wire is None else wire.copy_(packed)

    def bind(self) -> None:
        """Make every gradient a view of its bucket, zeroed, as DDP's gradient_as_bucket_view
        does: backward then accumulates into the buffer itself and no pack is needed."""
        for params, bucket in zip(self.params, self.buckets, strict=True):
            bucket.buffer.zero_()
            for p, view in zip(params, bucket.views, strict=True):
                p.grad = view

    def finish(self, index: int) -> None:
        """Hand the reduced gradients back as views of the buffer (no copy)."""
        bucket = self.buckets[index]
        wire = self.wires[index]
        if wire is not None:
            bucket.buffer.copy_(wire)
        for p, view in zip(self.params[index], bucket.views):
            p.grad = view if view.device == p.device else view.to(p.device)
