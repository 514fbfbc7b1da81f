"""Open a report.html in headless Chromium and save a screenshot: proof that it renders offline.

Command: python -m distbench.report.screenshot results/<timestamp>/report.html report.png

Chromium runs with a fresh profile, no network features and no GPU, so the page can only show
what it embeds. `dom_after_load` returns the page as Chromium built it, which tests use to check
that every image decoded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    browser = find_chromium()
    if browser is None:
        raise RuntimeError("no Chromium found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="distbench-chromium-") as profile:
        return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 4200,
               timeout: float = 120) -> Path:
    """Render `html` at width × height CSS pixels into `png`."""
    png = png.resolve()
    png.unlink(missing_ok=True)
    proc = _run([f"--screenshot={png}", f"--window-size={width},{height}",
                 html.resolve().as_uri()], timeout)
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    return png


def dom_after_load(html: Path, timeout: float = 120) -> str:
    """The serialised DOM once the page (and its scripts) finished loading."""
    return _run(["--dump-dom", html.resolve().as_uri()], timeout).stdout


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m distbench.report.screenshot REPORT.html OUT.png", file=sys.stderr)
        return 2
    print(screenshot(Path(argv[0]), Path(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
