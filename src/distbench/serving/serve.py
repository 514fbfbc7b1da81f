"""A Gradio page for one checkpoint: upload an image (or pick a test-set sample), see the top 3.

Command: distbench serve results/<timestamp>/model.safetensors [--host 127.0.0.1] [--port 7860]

The page binds to 127.0.0.1 unless `--host` says otherwise, opens no public link unless
`--share` is given, and sends no analytics. The prediction API reads only files that Gradio
itself received as uploads (inside its upload folder): a request naming any other server path is
refused before the path is touched, so the API can neither read nor probe the server's files.
Text from the checkpoint's sidecar is escaped before it reaches the page's Markdown. Every bad
input (a file that is not an image, an empty file, a corrupt or mismatched checkpoint, an unknown
model name) is shown on the page as one line while the server keeps running. The checkpoint is
re-read whenever its files change, so a checkpoint replaced by a later run, or fixed after an
error, is served without a restart.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from distbench.core.errors import DistbenchError, UsageError, error_line
from distbench.launch.local import run_dir
from distbench.serving.predict import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_image,
    resolve,
)
from distbench.serving.predict import top_k as top_classes

SAMPLES = 10  # sample images from the test set, one per class while classes last
MAX_UPLOAD = "20mb"


class LiveCheckpoint:
    """The checkpoint, loaded again when its files change (path, inode, size or mtime).

    A failed load is remembered with its message, so every request answers with that one line
    until the files change, instead of stopping the server.
    """

    def __init__(self, path: str | Path, trust_code: bool = False) -> None:
        self.path = Path(path)
        self.trust_code = trust_code
        self._lock = threading.Lock()
        self._stamp: object = None
        self._ckpt: Checkpoint | None = None
        self._error: DistbenchError | None = None

    def _signature(self) -> object:
        try:
            stats = [(str(p), os.stat(p)) for p in resolve(self.path)]
        except (CheckpointError, OSError) as exc:  # OSError: replaced between resolve and stat
            return str(exc)
        return tuple((p, s.st_ino, s.st_size, s.st_mtime_ns) for p, s in stats)

    def get(self) -> Checkpoint:
        """The current checkpoint, or a `CheckpointError` saying why there is none."""
        with self._lock:
            stamp = self._signature()
            if stamp != self._stamp:
                self._stamp = stamp
                # Whatever happens below, the files on disk are no longer the model served.
                self._ckpt, self._error = None, None
                try:
                    self._ckpt = load_checkpoint(self.path, self.trust_code)
                except DistbenchError as exc:
                    self._error = exc
                except Exception as exc:  # noqa: BLE001 - the page stays up and says why
                    self._error = CheckpointError(f"{self.path}: cannot be loaded "
                                                  f"({type(exc).__name__}: {exc})")
            if self._ckpt is None:
                if self._error is not None:
                    raise type(self._error)(str(self._error))
                raise CheckpointError(f"{self.path}: not loaded")
            return self._ckpt


# Every ASCII punctuation character, each of which a backslash makes literal in Markdown: not only
# the syntax characters (links, emphasis, HTML, `~~` strikethrough) but also the `:` and `.` by
# which GitHub-flavoured Markdown, which Gradio renders, turns bare URLs and www. names into links.
MARKDOWN_ACTIVE = re.compile(r"([!-/:-@\[-`{-~])")
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def md_text(value: object) -> str:
    """`value` as literal text inside Markdown: no links, images, HTML or emphasis, one line."""
    return MARKDOWN_ACTIVE.sub(r"\\\1", CONTROL.sub(" ", str(value)))


def md_code(value: object) -> str:
    """`value` as one inline code span, fenced with more backticks than it contains."""
    text = CONTROL.sub(" ", str(value))
    ticks = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (ticks + 1)
    return f"{fence}{text}{fence}" if not ticks else f"{fence} {text} {fence}"


def info_markdown(ckpt: Checkpoint) -> str:
    """The run behind the model: which strategy trained it, and how accurate it was on test."""
    m = ckpt.meta
    acc = m.get("test_accuracy")
    acc_text = f"{acc:.2%}" if isinstance(acc, (int, float)) else "unknown"
    shape = "×".join(md_text(v) for v in ckpt.input_shape)
    return (
        f"**{md_text(m['model'])}** on **{md_text(m.get('dataset', '?'))}**, trained with "
        f"**{md_text(m.get('strategy', '?'))} ×{md_text(m.get('workers', '?'))}** "
        f"({md_text(m['framework'])}); test accuracy **{acc_text}**  \n"
        f"run {md_code(m.get('run_id', '?'))} · input {shape} · {len(ckpt.classes)} classes · "
        f"checkpoint {md_code(ckpt.weights)}"
    )


def uploaded_file(path: object, upload_folder: str | Path) -> Path | None:
    """`path` if it is a file Gradio stored in its upload folder, else None.

    Decided from the text first (`..` resolved without touching the disk), so a path outside the
    folder is refused unread; symbolic links are then resolved and must stay inside too.
    """
    if not isinstance(path, str) or not path:
        return None
    root = Path(os.path.abspath(upload_folder))
    try:
        candidate = Path(os.path.abspath(path))
        if not candidate.is_relative_to(root):
            return None
        real = Path(os.path.realpath(candidate))
    except (ValueError, OSError):  # a NUL byte in the path, a name too long to look up
        return None
    return real if real.is_relative_to(os.path.realpath(root)) else None


def write_samples(ckpt: Checkpoint, folder: Path, count: int = SAMPLES
                  ) -> tuple[dict[Path, str], str]:
    """PNG files of test-set images, the first of each class in class order; never downloads.

    Returns ({file: true class}, note); the note says why there are none when the dataset is not
    at hand (samples are a convenience: the page works without them).
    """
    from PIL import Image

    from distbench.core.config import DataConfig
    from distbench.data import load_dataset

    name = str(ckpt.meta.get("dataset"))
    previous = os.environ.get("DISTBENCH_OFFLINE")
    os.environ["DISTBENCH_OFFLINE"] = "1"  # samples are a convenience, not worth a download
    try:
        data = load_dataset(DataConfig(name=name), ckpt.meta.get("image_size"))
    except DistbenchError as exc:
        return {}, f"No samples: dataset {name} is not available here ({exc})"
    finally:
        if previous is None:
            os.environ.pop("DISTBENCH_OFFLINE", None)
        else:
            os.environ["DISTBENCH_OFFLINE"] = previous
    if data.input_shape != ckpt.input_shape:
        return {}, f"No samples: {name} here has shape {data.input_shape}, not {ckpt.input_shape}"
    picked: list[int] = []
    for round_ in range(count):
        for k in range(data.num_classes):
            hits = np.flatnonzero(data.test_y == k)
            if round_ < len(hits) and len(picked) < count:
                picked.append(int(hits[round_]))
    files: dict[Path, str] = {}
    for index in picked:
        pixels = data.test_x[index]
        if pixels.dtype != np.uint8:
            pixels = (pixels * 255).round().astype(np.uint8)
        image = (Image.fromarray(pixels[0], "L") if pixels.shape[0] == 1
                 else Image.fromarray(pixels.transpose(1, 2, 0), "RGB"))
        truth = data.classes[data.test_y[index]]
        path = folder / f"{_slug(name)}-test{index}-{_slug(truth)}.png"
        image.save(path)
        files[path] = truth
    return files, f"Samples from the {name} test set: click one"


def _slug(text: str) -> str:
    """A file-name part from sidecar or dataset text: no separators, no dots, nothing hidden."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", text)


def build_app(live: LiveCheckpoint, samples_dir: Path) -> Any:
    """The Gradio Blocks app; nothing is started until `launch`. Samples go to `samples_dir`."""
    import gradio as gr

    try:
        ckpt: Checkpoint | None = live.get()
    except DistbenchError:
        ckpt = None
    samples, note = write_samples(ckpt, samples_dir) if ckpt else ({}, "")
    # Gradio hands a picked sample over as a copy with the same file name.
    truth = {path.name: true_class for path, true_class in samples.items()}

    def info() -> str:
        try:
            return info_markdown(live.get())
        except DistbenchError as exc:
            return f"**Checkpoint unusable:** {md_text(exc)}"

    def classify(upload: dict[str, Any] | None) -> tuple[dict[str, float] | None, str, str]:
        """`upload` is the Image component's raw file record (the event skips Gradio's own
        decoding), so a file that is not an image reaches `load_image` and its one-line message
        instead of failing inside Gradio. Gradio checks only records marked as its own files;
        an unmarked record arrives as sent, so the path is checked here, before any use."""
        if not upload:
            return None, "", info()
        raw = upload.get("path") if isinstance(upload, dict) else None
        if not raw:
            return None, "**Error:** no file received; upload the image again", info()
        path = uploaded_file(raw, image.GRADIO_CACHE)
        if path is None:
            return None, "**Error:** only uploaded images are accepted; upload the image", info()
        try:
            current = live.get()
            (top,) = top_classes(current, load_image(path, current.input_shape)[None])
            known = truth.get(path.name)
            note = f"Test-set sample; true class: **{md_text(known)}**" if known else ""
            return dict(top), note, info_markdown(current)
        except DistbenchError as exc:
            message = str(exc).replace(str(path), path.name)
            return None, f"**Error:** {md_text(message)}", info()

    with gr.Blocks(title="distbench serve", analytics_enabled=False) as app:
        gr.Markdown("## distbench: classify an image with a trained model")
        info_box = gr.Markdown(info(), elem_id="model-info")
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Image (any size, grayscale or colour)", type="filepath",
                                 sources=["upload", "clipboard"], height=300, elem_id="image")
                if samples:
                    gr.Examples([[str(p)] for p in samples], inputs=image, label=note)
                elif note:
                    gr.Markdown(md_text(note))
            with gr.Column():
                label = gr.Label(num_top_classes=3, label="Top 3", elem_id="prediction")
                status = gr.Markdown(elem_id="status")
        image.change(classify, inputs=image, outputs=[label, status, info_box],
                     api_name="predict", preprocess=False)
        app.load(info, outputs=info_box, api_name="info")
    return app


def check_address(host: str, port: int) -> None:
    """Refuse, in one line and before Gradio starts, an address the page could not listen on,
    with the actual reason: Gradio reports every failure to bind as a busy port."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be in [1, 65535], got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"--host {host}: cannot resolve it ({getattr(exc, 'strerror', exc)})"
                         ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server sets it
        try:
            probe.bind(address)
        except OSError as exc:
            hint = ("choose another --port" if exc.errno == errno.EADDRINUSE
                    else "give an address of this machine, or 0.0.0.0 for all of them")
            raise DistbenchError(f"cannot serve on {host}:{port}: {exc.strerror}; {hint}"
                                 ) from None


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 7860,
          share: bool = False, trust_code: bool = False) -> None:
    """Build the page and serve it until Ctrl-C."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no phoning home
    check_address(host, port)
    try:
        exists = Path(checkpoint).exists()
    except OSError as exc:  # a name too long to look up
        raise DistbenchError(f"{checkpoint}: cannot read it ({exc.strerror or exc})") from None
    if not exists:
        raise DistbenchError(f"{checkpoint}: no such checkpoint file")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise DistbenchError("distbench serve needs Gradio: pip install 'distbench[serve]'"
                             ) from None
    # A run folder: named after this process, so that one left by a SIGKILL goes at the next
    # start of a run or a page.
    samples_dir = run_dir()
    try:
        _serve(LiveCheckpoint(checkpoint, trust_code), samples_dir, host, port, share)
    finally:
        shutil.rmtree(samples_dir, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(live: LiveCheckpoint, samples_dir: Path, host: str, port: int, share: bool) -> None:
    """Launch and block; a bad checkpoint is reported but does not stop the page."""
    try:
        live.get()
    except UsageError:
        raise  # user code without --trust-code, or changed since training: nothing to serve
    except DistbenchError as exc:
        # Still serve: the page shows the same line, and picks up a fixed checkpoint by itself.
        sys.stderr.write(error_line(f"{exc} (the page shows this until it is fixed)"))
    app = build_app(live, samples_dir)
    try:
        app.queue(default_concurrency_limit=2).launch(
            server_name=host, server_port=port, share=share, inbrowser=False, quiet=True,
            allowed_paths=[str(samples_dir)], max_file_size=MAX_UPLOAD, ssr_mode=False,
            prevent_thread_lock=True,
        )
    except OSError as exc:
        reason = ("the port is in use" if "Cannot find empty port" in str(exc)
                  else str(exc).splitlines()[0])
        raise DistbenchError(f"cannot serve on {host}:{port}: {reason}; choose another --port"
                             ) from None
    print(f"distbench serve: {app.local_url} (Ctrl-C to stop)", flush=True)
    if share:
        print(f"public link (--share): {app.share_url}", flush=True)
    # SIGTERM (a service manager, a test) stops the server like Ctrl-C, so cleanup runs.
    signal.signal(signal.SIGTERM, _interrupt)
    app.block_thread()
