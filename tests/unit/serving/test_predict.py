"""Checkpoints and images for `distbench predict`/`serve`, in process: every damaged checkpoint and
bad image is one line, every image mode becomes model input on the training scale. (The command
itself: tests/cli/test_predict_cli.py.)

Command: python -m pytest tests/unit/serving/test_predict.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distbench.serving import serve
from distbench.serving.predict import (
    CheckpointError,
    ImageError,
    image_to_input,
    load_checkpoint,
    load_image,
    top_k,
)

from helpers import copy_checkpoint, mnist_5k, trained_checkpoint, write_test_images

# --------------------------------------------------------------------------- checkpoint checks


def _edit_sidecar(folder: Path, **changes: object) -> None:
    path = folder / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _integer_weights(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    save_file({k: v.to(torch.int64) for k, v in load_file(path).items()}, path)


def _sidecar_folder(folder: Path) -> None:
    (folder / "model.json").unlink()
    (folder / "model.json").mkdir()


def _three_channels(folder: Path) -> None:
    norm = json.loads((folder / "model.json").read_text())["normalisation"]
    _edit_sidecar(folder, input_shape=[3, 28, 28],
                  normalisation={"mean": norm["mean"] * 3, "std": norm["std"] * 3})


BAD_CHECKPOINTS = {
    "empty weights": (lambda f: (f / "model.safetensors").write_bytes(b""),
                      "model.safetensors: empty file (0 bytes)"),
    "garbage weights": (lambda f: (f / "model.safetensors").write_bytes(b"\xff" * 4096),
                        "model.safetensors: not a readable safetensors file"),
    "unknown model": (lambda f: _edit_sidecar(f, model="resnet-999"),
                      "model.json: unknown model 'resnet-999' in the sidecar; this distbench "
                      "knows: mlp-128, mlp-512, mlp-25, mlp-wide, cnn, mobilenet_v2"),
    "other architecture": (lambda f: _edit_sidecar(f, model="mlp-512"),
                           "does not match its sidecar model.json (mlp-512, 1x28x28 input, 10 "
                           "classes): tensor '1.1.weight' is 128x784 in the weights, 512x784 in "
                           "the model"),
    "other input shape": (_three_channels, "tensor '0.mean' is 1x1x1x1 in the weights, "
                                           "1x3x1x1 in the model"),
    "other classes": (lambda f: _edit_sidecar(f, classes=["a", "b"], tensors=None),
                      "tensor '1.4.weight' is 10x128 in the weights, 2x128 in the model"),
    "tensor list": (lambda f: _edit_sidecar(f, tensors=["0.mean"]), "are not listed"),
    "sidecar missing": (lambda f: (f / "model.json").unlink(), "its sidecar model.json is missing"),
    "sidecar not json": (lambda f: (f / "model.json").write_text("{"),
                         "model.json: not a readable JSON sidecar"),
    "sidecar lacks keys": (lambda f: (f / "model.json").write_text("{}"), "sidecar lacks"),
    "scalar normalisation": (lambda f: _edit_sidecar(f, normalisation={"mean": 0.1, "std": 0.3}),
                             "one finite mean and one positive std per channel"),
    "zero std": (lambda f: _edit_sidecar(f, normalisation={"mean": [0.1], "std": [0]}),
                 "one positive std per channel"),
    "NaN std": (lambda f: _edit_sidecar(f, normalisation={"mean": [0.1], "std": [float("nan")]}),
                "one positive std per channel"),
    "boolean mean": (lambda f: _edit_sidecar(f, normalisation={"mean": [True], "std": [1.0]}),
                     "one finite mean"),
    "sidecar nested too deeply": (lambda f: (f / "model.json").write_text("[" * 100_000
                                                                          + "]" * 100_000),
                                  "model.json: not a usable JSON sidecar (nested too deeply)"),
    "sidecar number too long": (lambda f: (f / "model.json").write_text(
        '{"workers": ' + "9" * 5000 + "}"), "model.json: not a readable JSON sidecar"),
    "sidecar a folder": (_sidecar_folder, "model.json: the sidecar is not a regular file"),
    "sidecar model not a spec": (lambda f: _edit_sidecar(f, model=":::"),
                                 "model.json: model ':::' is neither a model this distbench knows "
                                 "nor a user model"),
    "integer weights": (_integer_weights,
                        "is torch.int64 in the weights, torch.float32 in the model"),
    "tensor list not a list": (lambda f: _edit_sidecar(f, tensors=7), "tensors must list"),
    "image size not a number": (lambda f: _edit_sidecar(f, image_size="big"),
                                "image_size must be an integer in"),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_bad_checkpoints_raise_one_line(tmp_path: Path, case: str) -> None:
    damage, expected = BAD_CHECKPOINTS[case]
    folder = copy_checkpoint(tmp_path / "ckpt")
    damage(folder)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder / "model.safetensors")
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_checkpoint_paths(tmp_path: Path) -> None:
    folder = trained_checkpoint()
    for form in (folder, folder / "model.json", folder / "model.safetensors"):
        assert load_checkpoint(form).weights == folder / "model.safetensors"
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match="holds no model.safetensors or model.keras"):
        load_checkpoint(tmp_path)
    (tmp_path / "runs.jsonl").write_text("{}\n")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "runs.jsonl")
    with pytest.raises(CheckpointError, match="cannot read it"):
        load_checkpoint(tmp_path / ("a" * 300))  # a name longer than the file system allows


def test_integer_statistics_in_the_sidecar_are_read_as_floats(tmp_path: Path) -> None:
    """The sidecar's statistics only size the model (the weights hold the values): integers
    there must not make integer buffers, which would truncate the stored std to 0."""
    folder = copy_checkpoint(tmp_path / "ckpt")
    _edit_sidecar(folder, normalisation={"mean": [0], "std": [1]}, workers=float("nan"))
    ckpt = load_checkpoint(folder)
    expected = load_checkpoint(trained_checkpoint())
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(ckpt.probabilities(x), expected.probabilities(x), rtol=1e-6)
    assert ckpt.describe()["workers"] is None  # strict JSON: no NaN reaches --json


def test_a_model_answering_nan_is_refused() -> None:
    ckpt = load_checkpoint(trained_checkpoint())
    ckpt.probabilities = lambda batch: np.full((len(batch), 10), np.nan, np.float32)
    with pytest.raises(CheckpointError, match="answers NaN or infinity"):
        top_k(ckpt, np.zeros((1, 1, 28, 28), np.float32))


def test_the_page_never_serves_a_checkpoint_whose_files_changed(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Once the files change, the old model is gone even if loading the new ones fails in a way
    no check foresaw: every request then answers with why, never with the previous model."""
    folder = copy_checkpoint(tmp_path / "ckpt")
    live = serve.LiveCheckpoint(folder)
    assert live.get().meta["model"] == "mlp-128"
    _edit_sidecar(folder, dataset="changed")

    def broken(*args: object) -> None:
        raise RuntimeError("an unforeseen failure")

    monkeypatch.setattr(serve, "load_checkpoint", broken)
    for _ in range(2):
        with pytest.raises(CheckpointError, match="cannot be loaded .RuntimeError: an unforeseen"):
            live.get()


# --------------------------------------------------------------------------- image conversion


def test_dataset_image_round_trips_exactly(tmp_path: Path) -> None:
    """A PNG of a test sample becomes exactly the array the model was evaluated on."""
    data = mnist_5k()
    (path, _), = write_test_images(tmp_path, 1)  # index 0: 28x28 grayscale PNG
    assert np.array_equal(load_image(path, (1, 28, 28)), data.test_x[0])


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "I;16", "1", "CMYK"])
def test_any_image_mode_becomes_model_input(mode: str) -> None:
    image = Image.new("RGB", (50, 30), (200, 100, 50)).convert(mode)
    for shape in ((1, 28, 28), (3, 32, 32)):
        x = image_to_input(image, shape)
        assert x.shape == shape and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0


def test_conversion_matches_training_scale() -> None:
    grey = image_to_input(Image.new("L", (10, 10), 51), (1, 28, 28))
    assert np.allclose(grey, 51 / 255)
    rgb = image_to_input(Image.new("RGB", (28, 28), (255, 0, 128)), (3, 28, 28))
    assert np.allclose(rgb[:, 0, 0], [1.0, 0.0, 128 / 255])
    wide = image_to_input(Image.new("I;16", (4, 4), 65535), (1, 28, 28))
    assert np.allclose(wide, 1.0)  # 16-bit white stays white instead of clipping oddly
    clear = image_to_input(Image.new("RGBA", (8, 8), (255, 255, 255, 0)), (1, 28, 28))
    assert np.allclose(clear, 0.0)  # transparent pixels become the black background


def test_image_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    good = tmp_path / "good.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise, "L").save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:2000])  # header intact, pixels cut
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "zero.png").symlink_to("/dev/zero")  # would never end if read
    cases = {"empty.png": "empty file (0 bytes)", "text.png": "not an image",
             "cut.png": "unreadable image", "missing.png": "no such file",
             "folder.png": "not a regular file", "zero.png": "not a regular file",
             "a" * 300 + ".png": "unreadable image"}
    for name, expected in cases.items():
        with pytest.raises(ImageError, match=re.escape(expected)):
            load_image(tmp_path / name, (1, 28, 28))
    with pytest.raises(ImageError, match="only grayscale"):
        load_image(good, (2, 28, 28))


def test_an_image_over_the_pixel_limit_is_refused_not_decoded(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Pillow only warns about an image of one to two times its pixel limit, and decodes it (a
    657 KB PNG can declare 169 M pixels): here it is refused, in one line, before decoding. The
    limit is lowered for the test, so a small image stands for the large one."""
    path = tmp_path / "bomb.png"
    Image.new("L", (40, 40)).save(path)  # 1,600 pixels: 1.6x the lowered limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    decoded: list[object] = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self))
    with pytest.raises(ImageError, match="bomb.png: refused, too many pixels"):
        load_image(path, (1, 28, 28))
    assert not decoded


@pytest.mark.slow
def test_keras_checkpoint_loads_and_is_checked(tmp_path: Path) -> None:
    """The TensorFlow strategies' checkpoint: model.keras plus the same sidecar (slow only for
    importing TensorFlow, which the TF strategy tests pay for anyway)."""
    pytest.importorskip("tensorflow")
    from distbench.core.config import ModelConfig
    from distbench.models.keras_models import build_keras_model, keras

    meta = json.loads((trained_checkpoint() / "model.json").read_text())
    meta = {**{k: v for k, v in meta.items() if k != "tensors"}, "framework": "tensorflow"}
    norm = meta["normalisation"]
    model = build_keras_model(ModelConfig("mlp-128"), (1, 28, 28), 10, norm["mean"], norm["std"])
    model.save(tmp_path / "model.keras")
    (tmp_path / "model.json").write_text(json.dumps(meta))
    (image, _), = write_test_images(tmp_path / "images", 1)

    ckpt = load_checkpoint(tmp_path)
    x = load_image(image, ckpt.input_shape)[None]
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(x.transpose(0, 2, 3, 1))))
    assert np.allclose(ckpt.probabilities(x), expected, atol=1e-6)
    assert ckpt.describe()["framework"] == "tensorflow"

    _edit_sidecar(tmp_path, model="mlp-512")
    with pytest.raises(CheckpointError, match=r"does not match its sidecar model.json \(mlp-512, "
                                              r"1x28x28 input, 10 classes\): 4 weight tensors"):
        load_checkpoint(tmp_path)
    _edit_sidecar(tmp_path, model="mlp-128", framework="pytorch")
    with pytest.raises(CheckpointError, match="says framework 'pytorch' but the weights file"):
        load_checkpoint(tmp_path)
    _edit_sidecar(tmp_path, framework="tensorflow")
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"model.keras: not a readable \.keras file"):
        load_checkpoint(tmp_path)
    keras.Sequential([keras.layers.Dense(10)]).save(tmp_path / "model.keras")  # never built
    with pytest.raises(CheckpointError, match="the saved model has no input shape"):
        load_checkpoint(tmp_path)
