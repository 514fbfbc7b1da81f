"""`distbench serve`: the real server on a free port, driven through `gradio_client`.

Command: python -m pytest tests/cli/test_serve.py

One server serves every test here (starting Gradio is the slow part); tests that damage the
checkpoint restore it before they end, so the order of the tests does not matter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from distbench.cli.main import build_parser

from helpers import copy_checkpoint, mnist_5k, write_test_images

if importlib.util.find_spec("gradio") is None:  # found, not imported: the server imports it
    pytest.skip("distbench serve needs gradio: pip install -e '.[serve]'", allow_module_level=True)
gradio_client = pytest.importorskip("gradio_client")

START_TIMEOUT_S = 120
ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation


def shown(markdown: str) -> str:
    """The text a reader sees: the server escapes every punctuation character it did not write."""
    return ESCAPED.sub(r"\1", markdown)


@dataclass
class Server:
    url: str
    port: int
    folder: Path  # the served checkpoint (a private copy)
    pristine: Path  # an untouched copy to restore from
    proc: subprocess.Popen[str]
    log: Path
    client: object

    def predict(self, path: Path) -> tuple[dict, str, str]:
        label, status, info = self.client.predict(gradio_client.handle_file(str(path)),
                                                  api_name="/predict")
        return label, shown(status), shown(info)

    def info(self) -> str:
        return shown(self.client.predict(api_name="/info"))

    def restore(self) -> None:
        for name in ("model.safetensors", "model.json"):
            shutil.copy(self.pristine / name, self.folder / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    folder, pristine = copy_checkpoint(root / "ckpt"), copy_checkpoint(root / "pristine")
    port, log = free_port(), root / "serve.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "DISTBENCH_OFFLINE": "1", "GRADIO_TEMP_DIR": str(root / "gradio")}
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "distbench", "serve", str(folder), "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"serve exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not start:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        client = gradio_client.Client(url, verbose=False)
        yield Server(url, port, folder, pristine, proc, log, client)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def top3(label: dict) -> list[tuple[str, float]]:
    return [(c["label"], c["confidence"]) for c in label["confidences"]]


def test_info_names_the_run(server: Server) -> None:
    info = server.info()
    meta = json.loads((server.folder / "model.json").read_text())
    assert f"run `{meta['run_id']}`" in info
    assert "**single ×1**" in info and "**mlp-128** on **mnist-5k**" in info
    assert f"test accuracy **{meta['test_accuracy']:.2%}**" in info


def test_predictions_through_the_client(server: Server, tmp_path: Path) -> None:
    images = write_test_images(tmp_path, 12, start=100)
    correct = 0
    for path, truth in images:
        label, status, info = server.predict(path)
        assert status == "" and "mlp-128" in info
        top = top3(label)
        assert len(top) == 3 and label["label"] == top[0][0]
        assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
        correct += label["label"] == truth
    assert correct >= 8, f"{correct}/12 right; chance is about 1"


def test_bad_images_are_shown_and_the_server_lives_on(server: Server, tmp_path: Path) -> None:
    not_image, empty = tmp_path / "notes.png", tmp_path / "empty.png"
    not_image.write_text("plain text\n")
    empty.write_bytes(b"")
    label, status, _ = server.predict(not_image)
    assert not label.get("confidences")
    assert status == "**Error:** notes.png: not an image (Pillow cannot identify its format)"
    label, status, _ = server.predict(empty)
    assert status == "**Error:** empty.png: empty file (0 bytes), not an image"
    (good, _), = write_test_images(tmp_path, 1)
    assert server.predict(good)[1] == ""
    assert server.proc.poll() is None


def _sidecar(folder: Path, **changes: object) -> None:
    path = folder / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


BAD = {
    "corrupt": (lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64),
                "model.safetensors: not a readable safetensors file"),
    "unknown model": (lambda f: _sidecar(f, model="resnet-999"),
                      "model.json: unknown model 'resnet-999' in the sidecar"),
    "mismatched": (lambda f: _sidecar(f, model="mlp-512"),
                   "does not match its sidecar model.json (mlp-512, 1x28x28 input, 10 classes)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_checkpoint_is_shown_and_fixing_it_recovers(server: Server, tmp_path: Path,
                                                        case: str) -> None:
    damage, expected = BAD[case]
    (good, _), = write_test_images(tmp_path, 1)
    try:
        damage(server.folder)
        label, status, info = server.predict(good)
        assert status.startswith("**Error:** ") and expected in status, status
        assert "\n" not in status and not label.get("confidences")
        assert info.startswith("**Checkpoint unusable:** ") and expected in info
        assert expected in server.info()
    finally:
        server.restore()
    label, status, _ = server.predict(good)  # picked up again without a restart
    assert status == "" and len(top3(label)) == 3
    assert server.proc.poll() is None


def test_local_only_and_no_share_by_default(server: Server) -> None:
    args = build_parser().parse_args(["serve", "ckpt"])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    tcp = Path("/proc/net/tcp")
    if tcp.is_file():  # Linux: the listening socket is bound to 127.0.0.1 only
        listening = [line.split()[1] for line in tcp.read_text().splitlines()[1:]
                     if line.split()[3] == "0A"]
        assert f"0100007F:{server.port:04X}" in listening
        assert f"00000000:{server.port:04X}" not in listening
    assert "gradio.live" not in server.log.read_text()


def test_samples_come_from_the_test_set(tmp_path: Path) -> None:
    from PIL import Image

    from distbench.serving.predict import load_checkpoint
    from distbench.serving.serve import write_samples

    from helpers import trained_checkpoint

    files, note = write_samples(load_checkpoint(trained_checkpoint()), tmp_path)
    assert len(files) == 10 and sorted(files.values()) == [str(d) for d in range(10)]
    assert "mnist-5k test set" in note
    data = mnist_5k()
    path = next(iter(files))
    index = int(path.stem.split("-test")[1].split("-")[0])
    pixels = np.asarray(Image.open(path), dtype=np.float32) / 255
    assert np.array_equal(pixels, data.test_x[index, 0])


