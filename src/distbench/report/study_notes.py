"""What a study's compare.json adds to its records: the machine's noise before and after, runs
replaced because they were contended, and why adaptive repeats stopped.

Command: distbench report results/<timestamp>/
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distbench.results.records import is_number
from distbench.system.noise import noise_warning


def replaced_runs(metas: Sequence[dict[str, Any]]) -> set[str]:
    """Run ids that compare ran again because they were contended: left out of the statistics."""
    return {str(r) for m in metas for r in m.get("replaced_runs") or [] if isinstance(r, str)}


def _noise(session: dict[str, Any]) -> list[str]:
    lines = []
    for when in ("before", "after"):
        noise = session.get(f"noise_{when}")
        # compare.json is read as found: a hand edit may leave any JSON in these fields.
        if isinstance(noise, dict) and is_number(noise.get("cv")):
            mean_s = noise.get("mean_s")
            kernel = f"{mean_s * 1e3:.2g} ms" if is_number(mean_s) else "(unknown time)"
            lines.append(f"machine noise {when} the runs: CV {noise['cv']:.1%} of a fixed "
                         f"{kernel} kernel")
            warning = noise_warning(float(noise["cv"]))
            if warning:
                lines.append(warning)
    return lines


def study_notes(metas: Sequence[dict[str, Any]]) -> list[str]:
    """Lines for the top of summary.md, the terminal summary and report.html."""
    lines: list[str] = []
    for meta in metas:
        for session in meta.get("sessions") or []:
            if isinstance(session, dict):
                lines += _noise(session)
        auto = meta.get("auto")
        if isinstance(auto, dict) and auto.get("stopped"):
            lines.append(f"adaptive repeats: {auto.get('rounds')} rounds, stopped because "
                         f"{auto['stopped']}")
    replaced = replaced_runs(metas)
    if replaced:
        lines.append(f"{len(replaced)} contended run(s) were run again (--rerun-contended) and "
                     "are left out of the statistics; their records stay in runs.jsonl")
    return lines
