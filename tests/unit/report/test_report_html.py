"""report.html in a real browser: headless Chromium renders the table and decodes every plot.

Command: python -m pytest tests/unit/report/test_report_html.py
(set DISTBENCH_SCREENSHOT_DIR to keep the screenshot)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from distbench.report import build_report
from distbench.report.screenshot import dom_after_load, find_chromium, screenshot
from distbench.results.records import append_record

from helpers import study_records

# Test-only probe, added to a copy of the page: writes each image's decoded width into the DOM.
PROBE = ("<script>addEventListener('load', () => document.body.setAttribute('data-widths', "
         "JSON.stringify([...document.images].map(i => i.naturalWidth))));</script>")


@pytest.fixture
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; "
                    ".ci/system-packages installs it in CI)")
    return path


@pytest.fixture
def report_html(tmp_path: Path) -> Path:
    for r in study_records():
        append_record(tmp_path / "runs", r)
    build_report([tmp_path / "runs"], tmp_path / "runs")
    return tmp_path / "runs" / "report.html"


def test_chromium_decodes_every_plot_and_shows_the_table(chromium, report_html, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(report_html.read_text().replace("</body>", PROBE + "</body>"))
    dom = dom_after_load(probe)
    match = re.search(r'data-widths="([^"]*)"', dom)
    assert match, dom[:500]
    widths = json.loads(match[1].replace("&quot;", '"'))
    assert len(widths) == 4 and all(w == 800 for w in widths), widths
    assert "Training time (s) median [95% CI]" in dom
    assert "rank 1 exited with code 1: boom" in dom


def test_screenshot_of_the_report(chromium, report_html, tmp_path):
    import matplotlib.image

    png = screenshot(report_html, tmp_path / "report.png", height=2400)
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (2400, 1280)
    colours = {tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).round(2).tolist()}
    assert len(colours) > 50  # text, tables and plots, not a blank page
    keep = os.environ.get("DISTBENCH_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / "report.png")
