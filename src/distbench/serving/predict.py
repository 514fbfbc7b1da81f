"""Classify image files with a saved checkpoint, feeding them exactly as training fed its data.

Command: distbench predict results/<timestamp>/model.safetensors digit.png [more.png] [--json]

A checkpoint is a weights file, `model.safetensors` (PyTorch) or `model.keras` (TensorFlow), and
the JSON sidecar beside it with the same stem (`model.json`), written by `distbench run
--save-model`. The sidecar names the architecture, input shape, classes and normalisation; the
weights hold the numbers. Loading rebuilds the named architecture from the sidecar and checks
every tensor's name and shape against the file, so a sidecar that belongs to other weights is
reported instead of producing confident nonsense.

Images become model input the way the datasets do: grayscale or RGB as the model expects,
resized to its input size, pixels scaled to [0, 1]. The model normalises internally (its first
layer), so nothing else is applied here. Every problem a user can cause (a file that is not an
image, an empty file, a corrupt or mismatched checkpoint, an unknown model name) is a
`DistbenchError` with a one-line message.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distbench.core.config import MAX_IMAGE_SIZE, ModelConfig
from distbench.core.errors import DistbenchError, UsageError, error_line
from distbench.models import MODEL_NAMES
from distbench.models.checkpoint import FORMATS, SIDECAR
from distbench.models.user import is_user_model, parse_spec, trusted_spec

WEIGHT_SUFFIXES = {Path(f.file).suffix: framework for framework, f in FORMATS.items()}
WEIGHT_FILES = [f.file for f in FORMATS.values()]
REQUIRED_KEYS = ("framework", "model", "classes", "input_shape", "normalisation")
TOP_K = 3
# Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS), which `load_image` enforces as an
# error (Pillow itself only warns up to twice it): no image read here can fill an input with more
# pixels than this, so a sidecar asking for one is wrong.
MAX_INPUT_PIXELS = 89_478_485


class CheckpointError(DistbenchError):
    """The checkpoint cannot be used: missing, corrupt, or its two files disagree."""


class ImageError(DistbenchError):
    """An input file cannot be read as an image."""


# --------------------------------------------------------------------------- checkpoints


@dataclass
class Checkpoint:
    """A loaded model plus its sidecar; `probabilities` maps NCHW [0, 1] pixels to softmax."""

    weights: Path
    meta: dict[str, Any]
    probabilities: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta["classes"]]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.meta["input_shape"])  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """What a reader needs to judge the predictions: which run, how it was trained, how good."""
        keys = ("model", "dataset", "framework", "strategy", "workers", "run_id",
                "test_accuracy", "input_shape")
        return {"checkpoint": str(self.weights), **{k: json_safe(self.meta.get(k)) for k in keys}}


def json_safe(value: Any) -> Any:
    """A sidecar value as strict JSON can hold it: a NaN or infinity (which Python's JSON reads)
    becomes null, so `--json` never prints a value other JSON readers reject."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def resolve(path: str | Path) -> tuple[Path, Path]:
    """(weights, sidecar) from the weights file, the sidecar, or the folder holding them."""
    try:
        return _resolve(Path(path))
    except OSError as exc:  # a name too long, a permission: the path cannot even be looked at
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _resolve(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        found = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
        if not found:
            raise CheckpointError(f"{path} holds no {' or '.join(WEIGHT_FILES)}; save one "
                                  "with distbench run --save-model")
        path = found[0]
    elif path.suffix == Path(SIDECAR).suffix:
        found = [path.with_suffix(s) for s in WEIGHT_SUFFIXES if path.with_suffix(s).is_file()]
        if not found:
            raise CheckpointError(f"{path}: no {path.stem}.safetensors or {path.stem}.keras "
                                  "beside this sidecar")
        path = found[0]
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file() or path.suffix not in WEIGHT_SUFFIXES:
        raise CheckpointError(f"{path}: not a checkpoint (expected a .safetensors or .keras "
                              "weights file, its .json sidecar, or their folder)")
    sidecar = path.with_suffix(Path(SIDECAR).suffix)  # beside the weights, the same stem
    if not sidecar.exists():
        raise CheckpointError(f"{path}: its sidecar {sidecar.name} is missing; the weights alone "
                              "do not say which model, classes or input they belong to")
    if not sidecar.is_file():  # a folder, a pipe that would block the read, a device
        raise CheckpointError(f"{sidecar}: the sidecar is not a regular file")
    return path, sidecar


def read_sidecar(sidecar: Path, framework: str) -> dict[str, Any]:
    """The sidecar as a dict, with every key that loading relies on present and plausible."""
    try:
        meta = json.loads(sidecar.read_text())
    except RecursionError:
        raise CheckpointError(f"{sidecar}: not a usable JSON sidecar (nested too deeply)"
                              ) from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, a 5,000-digit number
        raise CheckpointError(f"{sidecar}: not a readable JSON sidecar ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{sidecar}: expected a JSON object, got {type(meta).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"{sidecar}: sidecar lacks {', '.join(missing)}")
    if not isinstance(meta["model"], str):
        raise CheckpointError(f"{sidecar}: model must be a name or a spec, got {meta['model']!r}")
    if not is_user_model(meta["model"]) and meta["model"] not in MODEL_NAMES:
        raise CheckpointError(f"{sidecar}: unknown model '{meta['model']}' in the sidecar; this "
                              f"distbench knows: {', '.join(MODEL_NAMES)}")
    if is_user_model(meta["model"]):
        try:
            parse_spec(meta["model"])
        except UsageError:
            raise CheckpointError(f"{sidecar}: model {meta['model']!r} is neither a model this "
                                  "distbench knows nor a user model (file.py:function or "
                                  "package.module:function)") from None
    if meta["framework"] != framework:
        raise CheckpointError(f"{sidecar}: says framework '{meta['framework']}' but the weights "
                              f"file is a {framework} one")
    shape, classes = meta["input_shape"], meta["classes"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0
                                                                 for v in shape)):
        raise CheckpointError(f"{sidecar}: input_shape must be [C, H, W], got {shape}")
    if shape[1] * shape[2] > MAX_INPUT_PIXELS:
        raise CheckpointError(f"{sidecar}: input_shape {shape} is larger than any image Pillow "
                              f"opens ({MAX_INPUT_PIXELS:,} pixels)")
    if not (isinstance(classes, list) and len(classes) >= 2):
        raise CheckpointError(f"{sidecar}: classes must list at least 2 names, got {classes}")
    norm = meta["normalisation"]

    def per_channel(values: Any) -> bool:
        return (isinstance(values, list) and len(values) == shape[0]
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in values))

    if not (isinstance(norm, dict) and per_channel(norm.get("mean"))
            and per_channel(norm.get("std")) and all(v > 0 for v in norm["std"])):
        raise CheckpointError(f"{sidecar}: normalisation needs one finite mean and one positive "
                              "std per channel")
    size = meta.get("image_size")
    if size is not None and not (isinstance(size, int) and 0 < size <= MAX_IMAGE_SIZE):
        raise CheckpointError(f"{sidecar}: image_size must be an integer in [1, "
                              f"{MAX_IMAGE_SIZE}] or null, got {size!r}")
    listed = meta.get("tensors")
    if listed is not None and not (isinstance(listed, list)
                                   and all(isinstance(t, str) for t in listed)):
        raise CheckpointError(f"{sidecar}: tensors must list tensor names, got {listed!r}")
    return meta


def load_checkpoint(path: str | Path, trust_code: bool = False) -> Checkpoint:
    """Load and verify a checkpoint; any problem is a one-line `CheckpointError`.

    A user model is rebuilt by running its code: only with `trust_code`, and only while that
    code's SHA-256 is the one the sidecar recorded at training."""
    weights, sidecar = resolve(path)
    framework = WEIGHT_SUFFIXES[weights.suffix]
    meta = read_sidecar(sidecar, framework)
    if weights.stat().st_size == 0:
        raise CheckpointError(f"{weights}: empty file (0 bytes); save the model again")
    name = meta["model"]
    if is_user_model(name):
        name = trusted_spec(name, meta.get("model_file"), meta.get("model_sha256"), trust_code,
                            sidecar)
    model = ModelConfig(name=name, image_size=meta.get("image_size"))
    loader = _load_torch if framework == "pytorch" else _load_keras
    return Checkpoint(weights, meta, loader(weights, sidecar, meta, model))


def _mismatch(weights: Path, sidecar: Path, meta: dict[str, Any], what: str) -> CheckpointError:
    c, h, w = meta["input_shape"]
    return CheckpointError(
        f"{weights} does not match its sidecar {sidecar.name} ({meta['model']}, {c}x{h}x{w} "
        f"input, {len(meta['classes'])} classes): {what}"
    )


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _load_torch(weights: Path, sidecar: Path, meta: dict[str, Any], model: ModelConfig
                ) -> Callable:
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from distbench.models.torch_models import build_model

    def unreadable(exc: Exception) -> CheckpointError:
        return CheckpointError(f"{weights}: not a readable safetensors file ({exc}); the file is "
                               "corrupt or truncated, save the model again")

    def build() -> torch.nn.Module:
        try:
            return build_model(model, tuple(meta["input_shape"]),
                               len(meta["classes"]), meta["normalisation"]["mean"],
                               meta["normalisation"]["std"])
        except DistbenchError as exc:
            raise CheckpointError(f"{sidecar}: cannot build the model it describes ({exc})"
                                  ) from None

    try:
        with safe_open(str(weights), framework="pt") as header:  # shapes only, no data read
            state = {name: header.get_slice(name).get_shape() for name in header.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(exc) from None
    listed = meta.get("tensors")
    if listed is not None and sorted(listed) != sorted(state):
        extra, absent = sorted(set(state) - set(listed)), sorted(set(listed) - set(state))
        raise _mismatch(weights, sidecar, meta,
                        f"tensors {extra or absent} are {'not listed' if extra else 'missing'}")
    # The sidecar is checked against the weights on a model without storage first: one whose
    # input_shape was edited to something huge is refused before anything is allocated.
    with torch.device("meta"):
        expected = build().state_dict()
    for name, tensor in expected.items():
        if name not in state:
            raise _mismatch(weights, sidecar, meta, f"tensor '{name}' is missing")
        if tuple(state[name]) != tuple(tensor.shape):
            raise _mismatch(weights, sidecar, meta,
                            f"tensor '{name}' is {_shape(state[name])} in the weights, "
                            f"{_shape(tensor.shape)} in the model")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise _mismatch(weights, sidecar, meta, f"unexpected tensors {unexpected}")
    try:
        values = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(exc) from None
    for name, tensor in expected.items():
        if values[name].dtype != tensor.dtype:  # load_state_dict would cast ints and bools
            raise _mismatch(weights, sidecar, meta,
                            f"tensor '{name}' is {values[name].dtype} in the weights, "
                            f"{tensor.dtype} in the model")
    net = build()
    net.load_state_dict(values)
    net.eval()

    def probabilities(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()

    return probabilities


def _load_keras(weights: Path, sidecar: Path, meta: dict[str, Any], model: ModelConfig
                ) -> Callable:
    try:
        from distbench.models.keras_models import build_keras_model, keras
    except ImportError:
        raise CheckpointError(f"{weights}: a TensorFlow checkpoint needs TensorFlow: "
                              "pip install 'distbench[tf]'") from None
    try:
        saved = keras.models.load_model(weights, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad archive
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{weights}: not a readable .keras file ({reason}); the file is "
                              "corrupt or truncated, save the model again") from None
    c, h, w = meta["input_shape"]
    try:
        saved_shape = tuple(saved.input_shape[1:])
    except (AttributeError, ValueError, TypeError):  # a model saved before it was built
        raise _mismatch(weights, sidecar, meta, "the saved model has no input shape") from None
    # Before the sidecar's model is built: an input_shape edited to something huge stops here.
    if saved_shape != (h, w, c):
        raise _mismatch(weights, sidecar, meta, f"the saved model takes {saved.input_shape[1:]} "
                                                f"(NHWC) input")
    try:
        expected = build_keras_model(model, (c, h, w), len(meta["classes"]),
                                     meta["normalisation"]["mean"], meta["normalisation"]["std"])
    except DistbenchError as exc:
        raise CheckpointError(f"{sidecar}: cannot build the model it describes ({exc})") from None
    got = [tuple(v.shape) for v in saved.weights]
    want = [tuple(v.shape) for v in expected.weights]
    if len(got) != len(want):
        raise _mismatch(weights, sidecar, meta, f"{len(got)} weight tensors, expected {len(want)}")
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            raise _mismatch(weights, sidecar, meta,
                            f"weight {i} ({saved.weights[i].path}) is {_shape(a)} in the file, "
                            f"{_shape(b)} in the model")

    def probabilities(x: np.ndarray) -> np.ndarray:
        logits = saved(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False)
        return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=1))

    return probabilities


# --------------------------------------------------------------------------- images


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DistbenchError("reading images needs Pillow: pip install 'distbench[serve]'"
                             ) from None
    return Image


def image_to_input(image: Any, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A PIL image as one (C, H, W) float32 sample in [0, 1], the datasets' own form."""
    from PIL import ImageOps

    Image = _pil()
    channels, height, width = input_shape
    if channels not in (1, 3):
        raise ImageError(f"the model takes {channels}-channel input; only grayscale (1) and RGB "
                         "(3) models can classify image files")
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16"):
        # 16-bit grayscale: PIL's own conversion to 8 bits clips instead of scaling.
        scaled = np.asarray(image, dtype=np.float32) / 257.0
        image = Image.fromarray(scaled.round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels become black: the background of the MNIST-style datasets.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def load_image(path: str | Path, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Read an image file as model input; a file that is no image is a one-line `ImageError`."""
    Image = _pil()
    path = Path(path)
    try:
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():  # a folder, or a pipe or device that would block or never end
            raise ImageError(f"{path}: not a regular file")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes), not an image")
        with warnings.catch_warnings():
            # Pillow only warns about an image of 1-2x its pixel limit, and decodes it (a 657 KB
            # PNG can ask for 169 M pixels); here it is refused. Its other warnings (a damaged
            # EXIF block) would be lines of library output before the one-line message.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return image_to_input(image, input_shape)
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (Pillow cannot identify its format)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: refused, too many pixels to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        # An error of the file system names the path again; the line already starts with it.
        reason = exc.strerror if isinstance(exc, OSError) and exc.filename else exc
        raise ImageError(f"{path}: unreadable image ({reason})") from None


# --------------------------------------------------------------------------- predictions


def top_k(ckpt: Checkpoint, batch: np.ndarray, k: int = TOP_K) -> list[list[tuple[str, float]]]:
    """For each sample, the k most probable (class, probability) pairs, most probable first."""
    probs = ckpt.probabilities(batch.astype(np.float32))
    if not np.isfinite(probs).all():
        raise CheckpointError(f"{ckpt.weights}: the model answers NaN or infinity for these "
                              "images; its weights are not usable")
    k = min(k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(ckpt.classes[j], float(p[j])) for j in row]
            for row, p in zip(order, probs, strict=True)]


def format_top(top: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} ({p:.1%})" for name, p in top)


def predict_files(ckpt: Checkpoint, paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One result per path, in order: {"image", "top": [{"class", "probability"}]} or
    {"image", "error"}; one bad file does not stop the others."""
    results: list[dict[str, Any]] = [{"image": str(p)} for p in paths]
    good: list[tuple[int, np.ndarray]] = []
    for i, path in enumerate(paths):
        try:
            good.append((i, load_image(path, ckpt.input_shape)))
        except DistbenchError as exc:
            results[i]["error"] = str(exc)
    if good:
        tops = top_k(ckpt, np.stack([x for _, x in good]))
        for (i, _), top in zip(good, tops, strict=True):
            results[i]["top"] = [{"class": c, "probability": p} for c, p in top]
    return results


def run_predict(checkpoint: str, images: Sequence[str], as_json: bool, out: Any, err: Any,
                trust_code: bool = False) -> int:
    """The `distbench predict` command: one line per image (or one JSON object); exit 1 if any
    image failed, after printing the others."""
    ckpt = load_checkpoint(checkpoint, trust_code)
    results = predict_files(ckpt, images)
    if as_json:
        out.write(json.dumps({**ckpt.describe(), "predictions": results}, indent=2) + "\n")
    for r in results:
        if "error" in r:
            out.flush()
            err.write(error_line(r["error"]))
            err.flush()
        elif not as_json:
            top = [(t["class"], t["probability"]) for t in r["top"]]
            out.write(f"{r['image']}: {format_top(top)}\n")
    return 1 if any("error" in r for r in results) else 0
