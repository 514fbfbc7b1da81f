"""The contention and noise arithmetic on known counter values (the live check is a multiproc
test that starts a busy loop beside a real run).

Command: python -m pytest tests/unit/system/test_machine_state.py
"""

from __future__ import annotations

from distbench.system.contention import Sample, machine_state, process_tree_cpu_s, window_note
from distbench.system.noise import measure_noise, noise_warning


def test_others_cpu_is_the_machine_busy_time_less_the_runs_own() -> None:
    start = Sample(wall=100.0, own=0.0, ticks=(1000.0, 5.0), freqs=[2000.0, 2000.0])
    end = Sample(wall=110.0, own=0.0, ticks=(1018.0, 5.5), freqs=[2000.0, 1500.0])
    state = machine_state(start, end, own_cpu=15.0, cores=2)
    assert state["others_cpu_s"] == 3.0
    assert state["others_cpu_fraction"] == 0.15 and state["contended"] is True
    assert state["steal_fraction"] == 0.025
    assert state["cpu_freq_changed"] is True


def test_a_quiet_window_is_not_contended_and_invisible_counters_stay_unknown() -> None:
    start = Sample(wall=0.0, own=0.0, ticks=(50.0, 0.0), freqs=None)
    end = Sample(wall=10.0, own=0.0, ticks=(69.0, 0.0), freqs=None)
    state = machine_state(start, end, own_cpu=18.5, cores=2)
    assert state["others_cpu_fraction"] == 0.025 and state["contended"] is False
    assert state["cpu_freq_changed"] is None
    blind = machine_state(Sample(0.0, 0.0, None, None), Sample(1.0, 0.0, None, None), 0.5, 2)
    assert blind["others_cpu_fraction"] is None and blind["contended"] is False


def test_noise_kernel_reports_a_spread_and_warns_only_when_high() -> None:
    noise = measure_noise(samples=8)
    assert noise["samples"] == 8 and 0 < noise["min_s"] <= noise["mean_s"] <= noise["max_s"]
    assert noise_warning(0.02) is None
    assert "noisy" in (noise_warning(0.25) or "")


def test_a_benchmarks_window_note_names_both_shares() -> None:
    """A window in which this process worked: the note names both shares, and a machine
    whose counters are invisible says so rather than printing zeros."""
    start, cpu = Sample.now(), process_tree_cpu_s()
    spin_until = start.wall + 0.3
    while Sample.now().wall < spin_until:
        pass
    note = window_note(start, cpu, cores=2)
    assert "other processes took" in note and "steal" in note
    assert window_note(Sample(start.wall, 0.0, None, None), cpu, 2).endswith("not visible here "
                                                                            "(no /proc/stat)")
