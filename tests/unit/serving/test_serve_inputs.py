"""`distbench serve` treats requests and sidecars as hostile.

Command: python -m pytest tests/unit/serving/test_serve_inputs.py

The prediction API classifies only files Gradio received as uploads: a raw record naming a
server path is refused before the path is used. The page runs in this process on a free port,
with a stand-in model (uniform probabilities), driven through `gradio_client`.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distbench.serving import serve
from distbench.serving.predict import Checkpoint

HOSTILE = "x](javascript:alert(1)) ![t](http://evil.example/t.png) <img src=x onerror=alert(1)>"


def checkpoint(**meta: Any) -> Checkpoint:
    base = {"model": "mlp-25", "dataset": "not-here", "framework": "pytorch", "strategy": "single",
            "workers": 1, "run_id": "abc", "test_accuracy": 0.5, "input_shape": [1, 8, 8],
            "classes": [str(i) for i in range(10)]}
    return Checkpoint(Path("model.safetensors"), {**base, **meta},
                      lambda batch: np.full((len(batch), 10), 0.1, dtype=np.float32))


class Fixed:
    """A LiveCheckpoint that always has the same checkpoint."""

    def __init__(self, ckpt: Checkpoint) -> None:
        self.ckpt = ckpt

    def get(self) -> Checkpoint:
        return self.ckpt


def png(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(path)
    return path


# --------------------------------------------------------------------------- sidecar text


def test_sidecar_text_cannot_become_markup() -> None:
    markdown_it = pytest.importorskip("markdown_it")
    text = serve.info_markdown(checkpoint(model=HOSTILE, dataset=HOSTILE, strategy=HOSTILE,
                                          framework=HOSTILE, workers=HOSTILE,
                                          run_id="`a`` b\n\n<c>"))
    html = markdown_it.MarkdownIt("commonmark").render(text)
    assert "<a " not in html and "<img" not in html and "<script" not in html
    assert html.count("<p>") == 1  # one paragraph: no line of the sidecar starts a new block
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") == 5  # shown as text, five times
    assert "<code>`a`` b &lt;c&gt;</code>" in html


def test_markdown_escaping_keeps_plain_messages_as_they_are() -> None:
    markdown_it = pytest.importorskip("markdown_it")
    message = "model.json: unknown model 'resnet-999' in the sidecar (1x28x28, 10 classes) 87.6%"
    assert markdown_it.MarkdownIt("commonmark").render(serve.md_text(message)) == (
        f"<p>{message}</p>\n")
    assert serve.md_text("a_b <c> [d](e) `f` *g* &h") == (
        r"a\_b \<c\> \[d\]\(e\) \`f\` \*g\* \&h")
    assert serve.md_code("run-1") == "`run-1`"


@pytest.mark.parametrize("text", ["https://evil.example/phish", "www.evil.example", "~~struck~~",
                                  "mailto:a@evil.example"])
def test_sidecar_text_cannot_become_a_link_or_strikethrough(text: str) -> None:
    """Gradio renders GitHub-flavoured Markdown, which links bare URLs and www. names by
    themselves: the escaped text keeps none of the character runs that start one."""
    markdown_it = pytest.importorskip("markdown_it")
    escaped = serve.md_text(text)
    assert not any(run in escaped for run in ("://", "www.", "~~", "mailto:", "evil.example"))
    html = markdown_it.MarkdownIt("commonmark").enable("strikethrough").render(escaped)
    assert html == f"<p>{text}</p>\n"


# --------------------------------------------------------------------------- uploads


def test_uploaded_file_accepts_only_the_upload_folder(tmp_path: Path) -> None:
    uploads = tmp_path / "gradio"
    (uploads / "abc").mkdir(parents=True)
    inside = png(uploads / "abc" / "digit.png")
    outside = png(tmp_path / "outside.png")
    (uploads / "abc" / "link.png").symlink_to(outside)
    assert serve.uploaded_file(str(inside), uploads) == inside.resolve()
    for refused in (str(outside), f"{uploads}/abc/../../outside.png", "outside.png",
                    str(uploads / "abc" / "link.png"), "/etc/shadow", "", None, 3, ["x"],
                    f"{uploads}/abc/a\0b.png"):
        assert serve.uploaded_file(refused, uploads) is None, refused


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[Path]]]:
    """The page on a free port, and the list of paths `load_image` was asked to open."""
    if importlib.util.find_spec("gradio") is None:
        pytest.skip("distbench serve needs gradio: pip install -e '.[serve]'")
    client_module = pytest.importorskip("gradio_client")
    root = tmp_path_factory.mktemp("serve-inputs")
    saved = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED")}
    os.environ.update(GRADIO_TEMP_DIR=str(root / "uploads"), GRADIO_ANALYTICS_ENABLED="False")
    opened: list[Path] = []
    real_load_image = serve.load_image

    def recording_load_image(path: Any, shape: Any) -> np.ndarray:
        opened.append(Path(path))
        return real_load_image(path, shape)

    serve.load_image = recording_load_image  # type: ignore[assignment]
    (root / "samples").mkdir()
    app = serve.build_app(Fixed(checkpoint()), root / "samples")  # type: ignore[arg-type]
    try:
        app.queue().launch(server_name="127.0.0.1", server_port=free_port(), quiet=True,
                           prevent_thread_lock=True, ssr_mode=False)
        yield client_module.Client(app.local_url, verbose=False), opened
    finally:
        app.close()
        serve.load_image = real_load_image  # type: ignore[assignment]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_a_raw_server_path_is_refused_unopened(page: tuple[Any, list[Path]],
                                               tmp_path: Path) -> None:
    client, opened = page
    real_image = png(tmp_path / "secret.png")
    for path in (str(real_image), "/etc/shadow", "/no/such/file.png"):
        label, status, _ = client.predict({"path": path}, api_name="/predict")
        assert not (label or {}).get("confidences"), path
        assert status == "**Error:** only uploaded images are accepted; upload the image"
    assert opened == []


def test_an_upload_is_classified(page: tuple[Any, list[Path]], tmp_path: Path) -> None:
    from gradio_client import handle_file

    client, opened = page
    label, status, _ = client.predict(handle_file(str(png(tmp_path / "digit.png"))),
                                      api_name="/predict")
    assert status == "" and len(label["confidences"]) == 3
    assert opened and opened[-1].name == "digit.png" and "uploads" in opened[-1].parts


# --------------------------------------------------------------------------- the samples folder


def test_the_samples_folder_is_a_run_folder_removed_at_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Named after the serving process (so a folder that a SIGKILL left is removed by the next
    start, tests/unit/launch/test_local_run_dirs.py), and removed when the page stops."""
    pytest.importorskip("gradio")
    import tempfile

    from distbench.launch.local import RUN_DIR_NAME

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[Path] = []
    monkeypatch.setattr(serve, "_serve", lambda live, folder, *rest: seen.append(folder))
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"")
    serve.serve(ckpt, port=free_port())
    assert seen[0].parent == tmp_path and RUN_DIR_NAME.fullmatch(seen[0].name)
    assert seen[0].name.startswith(f"distbench-{os.getpid()}-") and not seen[0].exists()
