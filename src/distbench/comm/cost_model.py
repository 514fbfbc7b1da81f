"""The α-β cost model of ring allreduce, its fit to measurements, and the unit parsers it needs.

Command: distbench project RESULTS_DIR --workers 8,64,512 --bandwidth 25Gbit/s --latency 5us

A ring allreduce of `m` bytes over `n` workers is a reduce-scatter followed by an all-gather:
2(n-1) steps, each sending m/n bytes to the next worker. With α the per-message latency and β the
link bandwidth in bytes/s,

    t(m, n) = 2(n-1)·α + 2(n-1)/n · m/β

The same factor 2(n-1)/n turns a measured algorithm bandwidth (m / t) into the nccl-tests "bus
bandwidth", the rate each link actually carried, which is comparable across worker counts.
Everything here is pure arithmetic (numpy only), so the model can be tested by hand.

Sharded strategies (the registry's `sharding`) move and hold other amounts: ZeRO-1 all-reduces
the gradients as DDP does and then all-gathers the updated parameters; FSDP (ZeRO-3) all-gathers
the parameters before forward, again before backward, and reduce-scatters the gradients, each of
those one half of a ring allreduce. Model state per rank follows Rajbhandari et al., SC'20.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distbench.core.errors import UsageError
from distbench.strategies import Sharding

_SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
               "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30}
# Bandwidth: "bit" units are decimal bits (network convention), byte units are decimal bytes.
_RATE_UNITS = {"bit/s": 1 / 8, "b/s": 1.0, "bps": 1 / 8,
               "kbit/s": 1e3 / 8, "kb/s": 1e3, "kbps": 1e3 / 8,
               "mbit/s": 1e6 / 8, "mb/s": 1e6, "mbps": 1e6 / 8,
               "gbit/s": 1e9 / 8, "gb/s": 1e9, "gbps": 1e9 / 8,
               "tbit/s": 1e12 / 8, "tb/s": 1e12, "tbps": 1e12 / 8,
               "kib/s": 2**10, "mib/s": 2**20, "gib/s": 2**30}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*"


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    match = re.fullmatch(_NUMBER + r"(\S*)\s*", text.strip().lower())
    if not match:
        raise UsageError(f"cannot read {what} '{text}'; expected a number and a unit such as "
                         f"{example}")
    return float(match[1]), match[2]


def parse_size(text: str) -> int:
    """Bytes from '64MB', '1KiB', '4096' (KB/MB/GB are binary here, as in nccl-tests' sizes)."""
    value, unit = _split(text, "size", "1KB, 64MB or 4096")
    if unit not in _SIZE_UNITS:
        raise UsageError(f"unknown size unit '{unit}' in '{text}'; use B, KB, MB or GB")
    return int(round(value * _SIZE_UNITS[unit]))


def parse_sizes(text: str) -> list[int]:
    """'1KB:64MB' is every power-of-two multiple of the low bound up to the high one;
    '4KB,1MB,3MB' is that list."""
    if ":" in text:
        low, _, high = text.partition(":")
        lo, hi = parse_size(low), parse_size(high)
        if lo < 4 or hi < lo:
            raise UsageError(f"--sizes {text}: need 4 B <= low <= high")
        sizes = [lo]
        while sizes[-1] * 2 <= hi:
            sizes.append(sizes[-1] * 2)
        return sizes
    sizes = sorted({parse_size(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 4:
        raise UsageError(f"--sizes {text}: every size must be at least 4 bytes (one float32)")
    return sizes


def parse_bandwidth(text: str) -> float:
    """Bytes/s from '25Gbit/s', '10Gbps' (bits) or '3GB/s', '800MiB/s' (bytes)."""
    value, unit = _split(text, "bandwidth", "25Gbit/s or 3GB/s")
    if unit not in _RATE_UNITS:
        raise UsageError(f"unknown bandwidth unit '{unit}' in '{text}'; use e.g. Gbit/s, Gbps, "
                         "GB/s, MB/s")
    if value <= 0:
        raise UsageError(f"bandwidth must be > 0, got '{text}'")
    return value * _RATE_UNITS[unit]


def parse_latency(text: str) -> float:
    """Seconds from '5us', '0.5ms', '2e-6' (plain numbers are seconds)."""
    value, unit = _split(text, "latency", "5us or 0.2ms")
    if unit not in _TIME_UNITS:
        raise UsageError(f"unknown time unit '{unit}' in '{text}'; use s, ms, us or ns")
    return value * _TIME_UNITS[unit]


def format_bytes(n: float) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.3g} {unit}"
    return f"{n:.0f} B"


def bus_factor(n: int) -> float:
    """2(n-1)/n: the bytes each link carries per byte reduced, in a ring (nccl-tests)."""
    return 2 * (n - 1) / n


def bus_bandwidth(nbytes: float, seconds: float, n: int) -> float:
    """busbw = algbw · 2(n-1)/n, algbw = bytes / time."""
    return nbytes / seconds * bus_factor(n)


@dataclass(frozen=True)
class Link:
    """α: seconds per message step; β: bytes/s per link. `source` says where they came from."""

    alpha_s: float
    beta_Bps: float
    source: str = "given"

    def describe(self) -> str:
        return (f"α = {self.alpha_s * 1e6:.3g} us, β = {self.beta_Bps / 1e9:.4g} GB/s "
                f"({self.beta_Bps * 8 / 1e9:.4g} Gbit/s) [{self.source}]")


def ring_allreduce_s(nbytes: float, n: int, link: Link) -> float:
    """t = 2(n-1)·α + 2(n-1)/n · bytes/β; zero for one worker (nothing to reduce)."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) * link.alpha_s + bus_factor(n) * nbytes / link.beta_Bps


def ring_half_s(nbytes: float, n: int, link: Link) -> float:
    """One all-gather or reduce-scatter of `nbytes` in total: (n-1)·α + (n-1)/n · bytes/β."""
    if n <= 1:
        return 0.0
    return (n - 1) * link.alpha_s + (n - 1) / n * nbytes / link.beta_Bps


def step_comm_s(sharding: Sharding, payloads: Sequence[float], n: int, link: Link) -> float:
    """Communication per step; `payloads` are the bytes of each gradient all-reduce of a step
    (one float32 gradient, or what `--compression` sends: `distbench.strategies.wire`).

    none: one allreduce per payload, 2(n-1)/n·G/β each; optimizer (ZeRO-1): allreduce + all-gather
    of the updated parameters, 3(n-1)/n·G/β; full (FSDP): two parameter all-gathers and one
    gradient reduce-scatter, also 3(n-1)/n·G/β (plus the latency terms of each). The sharded
    strategies do not compress, so for them G is the sum of the payloads."""
    if sharding is Sharding.NONE:
        return sum(ring_allreduce_s(b, n, link) for b in payloads)
    nbytes = sum(payloads)
    if sharding is Sharding.OPTIMIZER:
        return ring_allreduce_s(nbytes, n, link) + ring_half_s(nbytes, n, link)
    return 3 * ring_half_s(nbytes, n, link)


def state_bytes_per_rank(sharding: Sharding, param_bytes: float, n: int,
                         optimizer_bytes: float) -> float:
    """Parameters + gradients + optimizer state one rank holds (ZeRO's accounting, fp32):
    none 2P + K, optimizer 2P + K/n, full (2P + K)/n, with P the parameter bytes and K the
    optimizer state bytes (fp32 Adam: K = 2P, so 16Ψ, 8Ψ + 8Ψ/n, 16Ψ/n for Ψ parameters)."""
    if sharding is Sharding.NONE:
        return 2 * param_bytes + optimizer_bytes
    if sharding is Sharding.OPTIMIZER:
        return 2 * param_bytes + optimizer_bytes / n
    return (2 * param_bytes + optimizer_bytes) / n


def optimizer_state_factor(optimizer: str | None, momentum: float | None) -> float:
    """Optimizer state in parameter copies: Adam 2 (two moments), SGD 1 with momentum, else 0."""
    if optimizer == "sgd":
        return 1.0 if momentum else 0.0
    return 2.0


def fit_link(points: Sequence[tuple[int, float, float]], source: str = "fit") -> Link:
    """α and β from (workers, bytes, seconds) measurements by least squares on relative error.

    The model is linear in (α, 1/β). Each equation is divided by its measured time, so a 1 KB
    point (tens of microseconds, which decide α) weighs as much as a 64 MB one (tens of
    milliseconds, which decide β); plain least squares would ignore the small sizes. A negative
    α (latency lost in the noise of large messages) is clamped to 0 and β refitted alone.
    """
    if len(points) < 2:
        raise UsageError("fitting α and β needs at least two message sizes")
    n = np.array([p[0] for p in points], dtype=float)
    m = np.array([p[1] for p in points], dtype=float)
    t = np.array([p[2] for p in points], dtype=float)
    if np.any(n < 2) or np.any(t <= 0):
        raise UsageError("fitting α and β needs timings from at least 2 workers, all > 0")
    design = np.column_stack([2 * (n - 1), 2 * (n - 1) / n * m]) / t[:, None]
    (alpha, inv_beta), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    if alpha < 0:
        alpha = 0.0
        inv_beta = float(np.sum(design[:, 1]) / np.sum(design[:, 1] ** 2))
    if inv_beta <= 0:
        raise UsageError("the fit gives no positive bandwidth: time does not grow with size")
    return Link(float(alpha), float(1 / inv_beta), source)


@dataclass(frozen=True)
class StepModel:
    """Per-step times of one worker count under both communication schedules."""

    workers: int
    compute_s: float
    comm_s: float
    serial_s: float
    overlap_s: float


def step_times(compute_s: float, comm_s: float, workers: int,
               backward_fraction: float) -> StepModel:
    """serial: compute + comm. overlap: forward + max(backward, comm), backward = f·compute.

    The overlapped form is a lower bound: it lets the whole allreduce hide behind backward,
    whereas in practice the last bucket can only start when backward ends.
    """
    backward = backward_fraction * compute_s
    overlap = (compute_s - backward) + max(backward, comm_s)
    return StepModel(workers, compute_s, comm_s, compute_s + comm_s, overlap)


def speedup(base_step_s: float, step_s: float, workers: int, scaling: str) -> float:
    """Throughput against one worker. Strong scaling: the same global batch per step, so
    t1 / tn; weak scaling: n times the samples per step, so n · t1 / tn."""
    ratio = base_step_s / step_s
    return ratio * workers if scaling == "weak" else ratio
