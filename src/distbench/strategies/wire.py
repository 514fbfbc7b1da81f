"""What a step's gradient collectives carry on the wire, for each `--compression`.

The worker counts this from its model's parameter shapes and stores it in the record
(`wire_bytes`, one entry per all-reduce payload of a step), so that `project` and the report use
the bytes the strategy really sends rather than assuming float32. Pure Python, no framework: the
planning processes import it too.

PowerSGD (torch's `powerSGD_hook`, Vogels et al. 2019) views each gradient of two or more
dimensions as a matrix of `shape[0]` rows by the rest, and compresses it only where
`(rows + cols) · r · min_compression_rate < rows · cols`. It then sends three payloads per step:
the tensors it left uncompressed, the P factors (rows × r each) and the Q factors (cols × r each).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

# torch's PowerSGDState default, which distbench keeps.
POWERSGD_MIN_COMPRESSION_RATE = 2
WIRE_ELEMENT_BYTES = {"none": 4, "fp16": 2, "bf16": 2, "powersgd": 4}


def powersgd_payloads(shapes: Sequence[Sequence[int]], rank: int) -> list[int]:
    """Elements per step in PowerSGD's three all-reduces: uncompressed, P factors, Q factors."""
    uncompressed = p_elems = q_elems = 0
    for shape in shapes:
        numel = prod(shape)
        if len(shape) < 2 or not numel:
            uncompressed += numel
            continue
        rows, cols = shape[0], numel // shape[0]
        if (rows + cols) * rank * POWERSGD_MIN_COMPRESSION_RATE < rows * cols:
            p_elems += rows * rank
            q_elems += cols * rank
        else:
            uncompressed += numel
    return [uncompressed, p_elems, q_elems]


def wire_bytes(compression: str, shapes: Sequence[Sequence[int]], rank: int = 1) -> list[int]:
    """Bytes of each all-reduce payload of one step (empty payloads left out)."""
    element = WIRE_ELEMENT_BYTES[compression]
    if compression == "powersgd":
        payloads = powersgd_payloads(shapes, rank)
    else:
        payloads = [sum(prod(shape) for shape in shapes)]
    return [n * element for n in payloads if n]
