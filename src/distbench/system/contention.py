"""Was the machine quiet while a run was timed? Other processes' CPU time, load, steal, clocks.

A run that shared its cores with something else measured that something too. Each rank samples
the machine's counters when its timed region starts and ends; rank 0 subtracts the CPU time of
the run's own processes on its host and records what remains. A run whose others used more than
`threshold` of the cores is `contended`: the report shows it and compare warns (and can rerun it).

Everything is read from /proc and /sys; where a counter is not visible (another OS, a container
without /sys/devices/system/cpu), its field is None rather than a guess.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_THRESHOLD = 0.10  # of the cores, used by other processes during the timed region
FREQ_CHANGE = 0.05  # a relative change of a core's clock that counts as "changed"
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def line_seconds(fields: list[str]) -> tuple[float, float]:
    """(busy, steal) CPU seconds of one /proc/stat `cpu` line's counters (after its name)."""
    v = [int(x) for x in fields] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def _cpu_ticks() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        return line_seconds(Path("/proc/stat").read_text().splitlines()[0].split()[1:])
    except (OSError, IndexError):
        return None


def _frequencies() -> list[float] | None:
    paths = sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
    try:
        found = [float(p.read_text()) for p in paths]
    except (OSError, ValueError):
        return None
    return found or None


def own_cpu_s() -> float:
    """CPU seconds this process has used, all its threads (user + system)."""
    t = os.times()
    return t.user + t.system


@dataclass
class Sample:
    wall: float
    own: float
    ticks: tuple[float, float] | None
    freqs: list[float] | None

    @classmethod
    def now(cls) -> Sample:
        return cls(time.monotonic(), own_cpu_s(), _cpu_ticks(), _frequencies())


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_state(start: Sample, end: Sample, own_cpu: float, cores: int,
                  threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """The record's `machine_state`: what others did during [start, end].

    `own_cpu` is the CPU time the run's own processes on this host used in that window (the
    ranks' `end.own - start.own`, summed)."""
    wall = max(end.wall - start.wall, 1e-9)
    state: dict[str, Any] = {"window_s": wall, "cores": cores, "threshold": threshold,
                             "load_avg_1m": load_average(), "others_cpu_s": None,
                             "others_cpu_fraction": None, "steal_fraction": None,
                             "cpu_freq_changed": None, "contended": False}
    if start.ticks and end.ticks:
        busy = end.ticks[0] - start.ticks[0]
        others = max(0.0, busy - own_cpu)
        state["others_cpu_s"] = others
        state["others_cpu_fraction"] = others / (wall * cores)
        state["steal_fraction"] = (end.ticks[1] - start.ticks[1]) / (wall * cores)
        state["contended"] = state["others_cpu_fraction"] > threshold
    if start.freqs and end.freqs and len(start.freqs) == len(end.freqs):
        state["cpu_freq_changed"] = any(abs(b - a) > FREQ_CHANGE * a
                                        for a, b in zip(start.freqs, end.freqs) if a)
    return state


def process_tree_cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def window_note(start: Sample, start_cpu: float, cores: int) -> str:
    """One line for a benchmark's output: what other processes and the hypervisor (steal) took
    of the cores since `start`, so a reader can tell a quiet run from one that measured its
    neighbours. `start_cpu` is `process_tree_cpu_s()` at `start`."""
    state = machine_state(start, Sample.now(), process_tree_cpu_s() - start_cpu, cores)
    if state["others_cpu_fraction"] is None:
        return "machine during the run: not visible here (no /proc/stat)"
    return (f"machine during the run ({state['window_s']:.0f} s): other processes took "
            f"{state['others_cpu_fraction']:.1%} of the cores, the hypervisor (steal) "
            f"{state['steal_fraction']:.1%}")
