"""Thread defaults that degrade gracefully beside a busy core (distbench.system.threads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from distbench.system import threads
from distbench.system.contention import TICK


def test_bounded_spin_is_added_unless_the_user_chose_a_wait_setting() -> None:
    assert threads.wait_defaults({}) == {"GOMP_SPINCOUNT": threads.SPIN_DEFAULT}
    assert threads.wait_defaults({"OMP_WAIT_POLICY": "PASSIVE"}) == {}
    assert threads.wait_defaults({"GOMP_SPINCOUNT": "0"}) == {}


def test_fingerprint_records_the_wait_setting_workers_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.wait_settings() == {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert threads.wait_settings() == {"OMP_WAIT_POLICY": None,
                                       "GOMP_SPINCOUNT": threads.SPIN_DEFAULT}


@pytest.mark.parametrize(("busy", "expected"), [
    (None, (8, False)), (0.0, (8, False)), (0.4, (8, False)), (1.0, (7, True)),
    (2.5, (5, True)), (2.6, (5, True)), (30.0, (1, True)),  # a half rounds up
])
def test_one_process_run_takes_the_idle_cores(monkeypatch: pytest.MonkeyPatch,
                                               busy: float | None,
                                               expected: tuple[int, bool]) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_cores", lambda: busy)
    count, note = threads.one_process_threads()
    assert (count, note is not None) == expected
    if note:
        assert f"{count} thread(s) instead of 8" in note


def test_busy_cores_sees_a_spinning_process() -> None:
    """A real process spinning on one core is seen as about one busy core."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seen = threads.busy_cores(window_s=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert seen is not None and seen >= 0.5


def test_busy_time_counts_only_the_cores_this_process_may_use() -> None:
    """Per-CPU lines of /proc/stat, summed over the affinity set only: a container's or a Slurm
    allocation's neighbours on other cores do not take its threads."""
    stat = ("cpu  900 0 300 100 0 0 0 0 0 0\n"
            "cpu0 100 0 0 50 0 0 0 0 0 0\n"
            "cpu1 800 0 300 50 0 0 0 0 0 0\n"
            "intr 1 2 3\n")
    assert threads.busy_ticks(stat, {0}) == pytest.approx(100 / TICK)
    assert threads.busy_ticks(stat, {0, 1}) == pytest.approx(1200 / TICK)
    assert threads.busy_ticks(stat, set()) == 0
