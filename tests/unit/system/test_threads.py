"""Thread defaults that degrade gracefully beside a busy core (distbench.system.threads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from distbench.system import threads


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
    (2.6, (5, True)), (30.0, (1, True)),
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
