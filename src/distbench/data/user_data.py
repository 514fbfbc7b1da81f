"""The user's own data: `--dataset folder:PATH` (ImageFolder layout) or `--dataset npz:PATH`.

Either is checked and converted once, in the launching process, into an array cache under the
user cache (`<cache>/arrays/<key>/`: one `.npy` per array and a `meta.json`), written into a
staging folder and renamed into place, so a crash never leaves half a cache; an entry damaged
later (one whose meta.json or arrays do not read back whole) is rebuilt. The key is a
fingerprint of every source file's name, size and mtime, and of the settings that change the
arrays (`--image-size`, `--test-fraction`), so an edited folder is decoded afresh. Workers
memory-map that one copy: N workers on a node share its pages instead of decoding N copies.
`distbench run` and `compare` hand their workers the key (`DISTBENCH_DATA_KEY`): a worker maps
that entry without walking the folder again (a million files are a million stats per worker),
so every rank trains on the snapshot the launcher checked. The entry is used only if its
recipe (the source's resolved path, `--image-size`, `--test-fraction`, written into its
meta.json) is the worker's own: a key inherited from another run, for other data, is ignored
and the worker prepares its dataset as without one.
Images stay uint8 in the cache; the trainers scale each batch to [0, 1] as they read it.

folder:PATH holds either `PATH/train/<class>/*` and `PATH/test/<class>/*`, or one tree
`PATH/<class>/*` split by `--test-fraction` with a fixed seed (numpy default_rng(0)). PNG and
JPEG files are decoded with Pillow: grayscale when every image is, else RGB. Images of different
sizes need `--image-size N` (then every image is resized to N x N, bilinear, when decoded).

npz:PATH holds `x_train`, `y_train`, `x_test`, `y_test` (and optionally `class_names`): uint8 or
float images, (N, H, W), (N, C, H, W) or (N, H, W, C) (the layout is detected and recorded), and
integer labels 0..K-1. It is read with `allow_pickle=False`: an npz file cannot run code.

Every refusal is one line naming the file and what is wrong (exit 2), before any worker starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from distbench.core.config import DataConfig
from distbench.data.datasets import DataError, Dataset, cache_dir
from distbench.system.files import umask_mode

FOLDER, NPZ = "folder:", "npz:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_VERSION = 2  # 2: meta.json keeps its recipe (see `_pinned`)
SPLITS = ("train", "test")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# Channel counts an image array's first or last axis may hold.
CHANNELS = (1, 3, 4)


class UserDataError(DataError):
    """The user's data folder or file is not usable as given (bad input: exit code 2)."""

    exit_code = 2


def is_user_dataset(name: str) -> bool:
    return name.startswith((FOLDER, NPZ))


@dataclass(frozen=True)
class Prepared:
    """Where a checked, converted dataset lies, and what it is."""

    folder: Path
    meta: dict[str, Any]


def check_source(name: str) -> Path:
    """The cheap check, for processes that only plan runs: the folder or file exists."""
    kind, _, raw = name.partition(":")
    if not raw:
        raise UserDataError(f"--dataset {name}: give a path after '{kind}:'")
    source = Path(raw).expanduser()
    if kind + ":" == FOLDER and not source.is_dir():
        raise UserDataError(f"--dataset {name}: no such folder {source}")
    if kind + ":" == NPZ and not source.is_file():
        raise UserDataError(f"--dataset {name}: no such file {source}")
    return source


def prepare(cfg: DataConfig, image_size: int | None = None) -> Prepared:
    """The array cache for `cfg.name`, built if absent; refuses bad data in one line."""
    source = check_source(cfg.name)
    recipe = _recipe(cfg, image_size)
    if cfg.name.startswith(FOLDER):
        files = _folder_files(source)
        key = _key(source, [p for split in files.values() for _, p in split], image_size,
                   cfg.test_fraction if "all" in files else None)
        return _cached(key, recipe, lambda stage: _decode_folder(source, files, image_size,
                                                                  cfg.test_fraction, stage))
    key = _key(source, [source], None, None)
    return _cached(key, recipe, lambda stage: _convert_npz(source, stage))


def load_user_dataset(cfg: DataConfig, image_size: int | None = None,
                      key: str | None = None) -> Dataset:
    """The prepared arrays, memory-mapped copy-on-write (shared pages, writable tensors); `key`,
    the launcher's, names them where it was made for this dataset."""
    prepared = (_pinned(key, _recipe(cfg, image_size)) if key else None) or prepare(cfg, image_size)
    meta = prepared.meta
    arrays = [np.load(prepared.folder / f"{name}.npy", mmap_mode="c") for name in ARRAYS]
    return Dataset(cfg.name, *arrays, classes=list(meta["classes"]), note=meta.get("note"),
                   source=meta["source"], stats=(meta["mean"], meta["std"]))


# --------------------------------------------------------------------------- cache


def _key(source: Path, files: list[Path], image_size: int | None,
         test_fraction: float | None) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, str(source.resolve()), image_size,
                                        test_fraction]).encode())
    for path in files:
        st = path.stat()
        # The name's own bytes: a file name need not be valid UTF-8.
        digest.update(os.fsencode(path) + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


KEY = re.compile(r"[0-9a-f]{32}")  # what `_key` returns


def _recipe(cfg: DataConfig, image_size: int | None) -> list[Any]:
    """What a cache entry was made from, found without reading the source's files."""
    return [cfg.name.partition(":")[0], str(check_source(cfg.name).resolve()), image_size,
            cfg.test_fraction]


def _pinned(key: str, recipe: list[Any]) -> Prepared | None:
    """The cache entry `key` names, if this machine has it whole and it was made by `recipe`;
    the key comes from the environment, so it must be one `_key` could have made (no path in
    it)."""
    if not KEY.fullmatch(key):
        raise UserDataError(f"DISTBENCH_DATA_KEY={key!r} is not a data cache key")
    entry = _entry(cache_dir() / "arrays" / key)
    return entry if entry is not None and entry.meta.get("recipe") == recipe else None


def _entry(final: Path) -> Prepared | None:
    """The finished cache entry at `final` (its meta.json is written last), or None. An entry
    that does not read back whole (a meta.json or an array damaged or edited since it was
    written: the cache is a folder anyone with the user's rights can change) counts as absent,
    and `_cached` replaces it."""
    meta = _read_meta(final / "meta.json")
    return Prepared(final, meta) if meta is not None and _whole(final, meta) else None


META_MAX_BYTES = 1 << 20  # a meta.json lists class names: megabytes would be millions of them


def _read_meta(path: Path) -> Any:
    """meta.json's JSON, or None where it is absent, not a regular file, too large or not JSON."""
    fh = _regular(path)
    if fh is None:
        return None
    with fh:
        raw = fh.read(META_MAX_BYTES + 1)
    if len(raw) > META_MAX_BYTES:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _regular(path: Path) -> BinaryIO | None:
    """`path` open for reading where it is a regular file; None otherwise. Opened without
    blocking, then checked: a FIFO would block the open, a device never end the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _whole(folder: Path, meta: Any) -> bool:
    """Whether meta.json says what `_meta` writes and the arrays are what it says: their
    headers checked before they are mapped, and the labels within the classes."""
    if not isinstance(meta, dict):
        return False
    classes, mean, std = meta.get("classes"), meta.get("mean"), meta.get("std")
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) for c in classes) and isinstance(meta.get("source"), str)
            and isinstance(mean, list) and isinstance(std, list)
            and len(mean) == len(std) and len(mean) in CHANNELS
            and all(_finite(m) for m in mean) and all(_finite(v) and v > 0 for v in std)):
        return False
    arrays = [_mapped(folder / f"{name}.npy") for name in ARRAYS]
    if any(a is None for a in arrays):
        return False
    x_train, y_train, x_test, y_test = arrays
    return len(x_train) > 0 and all(
        x.dtype in (np.uint8, np.float32) and x.ndim == 4 and x.shape[1] == len(mean)
        and x.shape[1:] == x_train.shape[1:] and y.dtype == np.int64 and y.shape == x.shape[:1]
        and (y.size == 0 or 0 <= y.min() <= y.max() < len(classes))
        for x, y in ((x_train, y_train), (x_test, y_test)))


def _finite(value: Any) -> bool:
    """A finite float: `_meta` writes floats only (an integer of 400 digits is not one)."""
    return isinstance(value, float) and math.isfinite(value)


def _mapped(path: Path) -> np.ndarray | None:
    """The .npy array at `path` mapped read-only, where it is one and holds what it declares."""
    fh = _regular(path)
    if fh is None:
        return None
    try:
        with fh:
            if _npy_fault(fh, os.fstat(fh.fileno()).st_size) is not None:
                return None
        return np.lib.format.open_memmap(path, mode="r")  # a lone .npy only, never an npz
    except (OSError, ValueError, EOFError, OverflowError):
        return None


NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


def _npy_fault(fh: BinaryIO, size: int) -> str | None:
    """Why the .npy array that `fh` starts (`size` bytes in all) cannot be loaded, from its
    header alone, before numpy allocates or maps what the header declares (a few bytes may
    claim 10**11 images); None when it can. A header numpy cannot parse raises its ValueError."""
    try:
        version = np.lib.format.read_magic(fh)
    except ValueError:
        return "is not a .npy array"
    if version not in NPY_HEADERS:
        return f"is .npy format {version[0]}.{version[1]}; save it with numpy.savez"
    shape, _, dtype = NPY_HEADERS[version](fh)
    declared = math.prod(shape) * dtype.itemsize  # Python's integers: numpy's would wrap
    if declared > size - fh.tell():
        return f"declares shape {shape} ({declared:,} bytes) but holds {size:,} bytes"
    return None


def _discard(entry: Path) -> None:
    """Move a damaged entry (whatever it is: a folder, a file, a link) into a fresh hidden
    folder, then remove that: the rename is atomic, and of processes discarding at once one
    moves it and the others find nothing to move."""
    aside = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}.damaged."))
    with contextlib.suppress(FileNotFoundError):
        os.rename(entry, aside / "entry")
    shutil.rmtree(aside, ignore_errors=True)


def _place(stage: Path, final: Path, meta: dict[str, Any], discarded: bool = False
           ) -> Prepared:
    """Rename the built entry (`meta` its meta.json) into place, and return the entry in place.
    An entry already there that reads back whole (another process's, built meanwhile) is kept
    and this one dropped; a damaged one is discarded first, once."""
    try:
        os.rename(stage, final)
    except OSError:
        placed = _entry(final)
        if placed is not None:
            return placed
        if discarded:
            raise
        _discard(final)
        return _place(stage, final, meta, discarded=True)
    return Prepared(final, meta)


def _cached(key: str, recipe: list[Any], build: Any) -> Prepared:
    root = cache_dir() / "arrays"
    final = root / key
    existing = _entry(final)
    if existing is not None:
        return existing
    try:  # `build` reports its source's faults itself: an OSError here is the cache's
        root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
        stage.chmod(umask_mode(executable=True))  # mkdtemp's 0700 would stay with the entry
        try:
            meta = {**build(stage), "recipe": recipe}
            (stage / "meta.json").write_text(json.dumps(meta, indent=1))
            return _place(stage, final, meta)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserDataError(f"cannot use the data cache folder {root} ({reason}); set "
                            "XDG_CACHE_HOME to a writable folder") from None


def _stats(x: np.ndarray, scale: float) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images in [0, 1], a chunk at a time."""
    total = np.zeros(x.shape[1])
    square = np.zeros(x.shape[1])
    for start in range(0, len(x), 4096):
        chunk = x[start : start + 4096].astype(np.float64) / scale
        total += chunk.sum(axis=(0, 2, 3))
        square += (chunk * chunk).sum(axis=(0, 2, 3))
    count = len(x) * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean * mean, 0.0))
    return [float(m) for m in mean], [float(s) or 1.0 for s in std]


def _meta(x_train: np.ndarray, x_test: np.ndarray, classes: list[str], source: str,
          **extra: Any) -> dict[str, Any]:
    mean, std = _stats(x_train, 255.0 if x_train.dtype == np.uint8 else 1.0)
    return {"classes": classes, "source": source, "mean": mean, "std": std,
            "train_samples": len(x_train), "test_samples": len(x_test),
            "input_shape": list(x_train.shape[1:]), "dtype": str(x_train.dtype), **extra}


# --------------------------------------------------------------------------- folder


def _folder_files(root: Path) -> dict[str, list[tuple[str, Path]]]:
    """(class, file) pairs per split: 'train' and 'test', or 'all' for one tree."""
    split = all((root / s).is_dir() for s in SPLITS)
    trees = {s: root / s for s in SPLITS} if split else {"all": root}
    found: dict[str, list[tuple[str, Path]]] = {}
    for name, tree in trees.items():
        classes = sorted(d.name for d in tree.iterdir() if d.is_dir()
                         and not d.name.startswith("."))
        if not classes:
            raise UserDataError(f"{tree}: no class folders (expected {tree}/<class>/*.png, or "
                                f"{root}/train/<class>/ and {root}/test/<class>/)")
        files = []
        for cls in classes:
            images = sorted(p for p in (tree / cls).iterdir() if p.is_file()
                            and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            if not images:
                raise UserDataError(f"{tree / cls}: no PNG or JPEG images in class '{cls}'")
            files += [(cls, p) for p in images]
        if len(classes) < 2:
            raise UserDataError(f"{tree}: one class folder ('{classes[0]}'); a classifier needs "
                                "at least 2")
        found[name] = files
    if split:
        train, test = ({c for c, _ in found[s]} for s in SPLITS)
        if train != test:
            only = sorted(train ^ test)[0]
            where = "train" if only in train else "test"
            raise UserDataError(f"{root}: class '{only}' is only in {where}/; train/ and test/ "
                                "must hold the same class folders")
    return found


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserDataError(f"{path}: unreadable or corrupt image ({str(exc).splitlines()[0]})"
                            ) from None


def _survey(files: list[tuple[str, Path]], image_size: int | None) -> tuple[str, tuple[int, int]]:
    """The common mode ('L' or 'RGB') and size, from the headers; mixed sizes need a size."""
    from PIL import Image, UnidentifiedImageError

    sizes: dict[tuple[int, int], Path] = {}
    gray = True
    for _, path in files:
        try:
            with Image.open(path) as image:
                sizes.setdefault(image.size, path)
                gray = gray and image.mode in ("L", "1", "I;16", "I")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise UserDataError(f"{path}: unreadable or corrupt image "
                                f"({str(exc).splitlines()[0]})") from None
    if image_size is None and len(sizes) > 1:
        (a, pa), (b, pb) = list(sizes.items())[:2]
        raise UserDataError(f"images of different sizes: {pa} is {a[0]}x{a[1]}, {pb} is "
                            f"{b[0]}x{b[1]}; pass --image-size N to resize them all to N x N")
    size = (image_size, image_size) if image_size else next(iter(sizes))
    return ("L" if gray else "RGB"), size


def _decode_folder(root: Path, files: dict[str, list[tuple[str, Path]]], image_size: int | None,
                   test_fraction: float, stage: Path) -> dict[str, Any]:
    from PIL import Image

    every = [f for split in files.values() for f in split]
    mode, (width, height) = _survey(every, image_size)
    channels = 1 if mode == "L" else 3
    classes = sorted({c for c, _ in every})
    index = {c: i for i, c in enumerate(classes)}
    if "all" in files:
        order = np.random.default_rng(0).permutation(len(files["all"]))
        n_test = max(1, round(test_fraction * len(order)))
        if n_test >= len(order):
            raise UserDataError(f"{root}: {len(order)} images leave none for training with "
                                f"--test-fraction {test_fraction}")
        chosen = {"test": [files["all"][i] for i in sorted(order[:n_test])],
                  "train": [files["all"][i] for i in sorted(order[n_test:])]}
        how = f"one tree split by --test-fraction {test_fraction} (numpy default_rng(0))"
    else:
        chosen, how = files, "train/ and test/ folders"
    out = {}
    for split in SPLITS:
        pairs = chosen[split]
        x = np.lib.format.open_memmap(stage / f"x_{split}.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(pairs), channels, height, width))
        for i, (_, path) in enumerate(pairs):
            with _open(path) as image:
                converted = image.convert(mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
            x[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
        x.flush()
        np.save(stage / f"y_{split}.npy", np.array([index[c] for c, _ in pairs], dtype=np.int64))
        out[split] = x
    resized = f", resized to {width}x{height}" if image_size else ""
    return _meta(out["train"], out["test"], classes, f"{root} ({how}; {mode}{resized})",
                 layout="NCHW")


# --------------------------------------------------------------------------- npz


def _convert_npz(path: Path, stage: Path) -> dict[str, Any]:
    try:
        if not _starts_as_zip(path):
            raise UserDataError(f"{path}: not an npz archive (a zip of .npy arrays, as "
                                "numpy.savez writes)")
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ARRAYS if k not in archive.files]
            if missing:
                raise UserDataError(f"{path}: missing array(s) {', '.join(missing)}; an npz "
                                    f"dataset holds {', '.join(ARRAYS)} (and optionally "
                                    "class_names)")
            arrays = {k: _member(archive, path, k) for k in ARRAYS}
            names = (_member(archive, path, "class_names") if "class_names" in archive.files
                     else None)
    except UserDataError:
        raise
    except MemoryError:  # a member truly as large as its header says
        raise UserDataError(f"{path}: too large to load into this machine's memory") from None
    # zipfile's own: BadZipFile (truncated), zlib.error (corrupt data), NotImplementedError (a
    # compression it lacks), RuntimeError (an encrypted member).
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RuntimeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserDataError(f"{path}: not a readable npz file ({detail})") from None
    layout = None
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise UserDataError(f"{path}: y_{split} must be a 1-D array of integer labels, got "
                                f"{y.dtype} of shape {y.shape}")
        shape = x.shape
        x, split_layout = _channels_first(x, path, split)  # refuses all but 3-D and 4-D
        if len(x) != len(y):
            raise UserDataError(f"{path}: x_{split} has {len(x)} samples but y_{split} has "
                                f"{len(y)} labels")
        if 0 in x.shape:
            raise UserDataError(f"{path}: x_{split} is empty (shape {shape})")
        if x.dtype != np.uint8 and x.dtype.kind != "f":
            raise UserDataError(f"{path}: x_{split} is {x.dtype}; use uint8 or float images")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise UserDataError(f"{path}: x_{split} holds NaN or infinite values")
        layout = layout or split_layout
        arrays[f"x_{split}"] = x
    if (arrays["x_train"].dtype == np.uint8) != (arrays["x_test"].dtype == np.uint8):
        raise UserDataError(f"{path}: x_train is {arrays['x_train'].dtype} but x_test is "
                            f"{arrays['x_test'].dtype}; store both as uint8 or both as floats "
                            "(one scale for both)")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise UserDataError(f"{path}: x_train images are {arrays['x_train'].shape[1:]} but x_test "
                            f"images are {arrays['x_test'].shape[1:]}")
    if names is not None and names.ndim != 1:
        raise UserDataError(f"{path}: class_names must be a 1-D array of names, got shape "
                            f"{names.shape}")
    labels = np.concatenate([arrays["y_train"], arrays["y_test"]])
    if names is None and int(labels.max()) >= len(labels):
        # Else one label of 2**62 would make 2**62 class names.
        raise UserDataError(f"{path}: label {int(labels.max())} among {len(labels)} samples; "
                            "without class_names the classes are 0..max label, and there "
                            "cannot be more classes than samples")
    k = len(names) if names is not None else int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= k:
        bad = int(labels.min() if labels.min() < 0 else labels.max())
        raise UserDataError(f"{path}: label {bad} out of range 0..{k - 1}"
                            + (f" ({k} class_names)" if names is not None else ""))
    if k < 2:
        raise UserDataError(f"{path}: labels name {k} class; a classifier needs at least 2")
    classes = [str(n) for n in names] if names is not None else [str(i) for i in range(k)]
    dtype = np.uint8 if arrays["x_train"].dtype == np.uint8 else np.float32
    if dtype == np.float32:
        for split in SPLITS:  # finite as float64 need not be as float32 (1e39 becomes inf)
            x = arrays[f"x_{split}"]
            if max(x.max(), -x.min()) > np.finfo(np.float32).max:
                raise UserDataError(f"{path}: x_{split} holds values beyond float32's range "
                                    "(about 3.4e38), which the cache stores")
    for name in ARRAYS:
        kind = dtype if name.startswith("x") else np.int64
        np.save(stage / f"{name}.npy", np.ascontiguousarray(arrays[name], dtype=kind))
    x_train, x_test = (np.load(stage / f"x_{s}.npy", mmap_mode="r") for s in SPLITS)
    return _meta(x_train, x_test, classes, f"{path} ({layout} in the file, {np.dtype(dtype)})",
                 layout=layout)


def _starts_as_zip(path: Path) -> bool:
    """Whether np.load would open `path` as an npz: it looks at the same first bytes, and reads
    anything else as a lone .npy array or a (refused) pickle. A file that cannot be read raises,
    as np.load would: zipfile.is_zipfile would call it no zip instead."""
    with path.open("rb") as fh:
        return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _member(archive: Any, path: Path, name: str) -> np.ndarray:
    """Array `name` of the open npz `archive`, its .npy header checked before numpy allocates
    what the header declares: a few bytes claiming (10**11, 28, 28) are refused, not
    allocated, and a member that is not a .npy array is refused by name."""
    member = name if name in archive.zip.namelist() else f"{name}.npy"  # as NpzFile looks
    with archive.zip.open(member) as fh:
        fault = _npy_fault(fh, archive.zip.getinfo(member).file_size)
    if fault:
        raise UserDataError(f"{path}: {member} {fault}")
    return archive[name]


def _channels_first(x: np.ndarray, path: Path, split: str) -> tuple[np.ndarray, str]:
    """(N, C, H, W) from (N, H, W), (N, C, H, W) or (N, H, W, C); the layout found. Where both
    the second and the last axis could hold channels (1, 3 or 4: tiny images), channels-first
    is taken, as PyTorch stores images."""
    if x.ndim == 3:
        return x[:, None], "NHW (one channel)"
    if x.ndim != 4:
        raise UserDataError(f"{path}: x_{split} has shape {x.shape}; expected (N, H, W), "
                            "(N, C, H, W) or (N, H, W, C)")
    if x.shape[-1] in CHANNELS and x.shape[1] not in CHANNELS:
        return x.transpose(0, 3, 1, 2), "NHWC"
    if x.shape[1] in CHANNELS:
        return x, "NCHW"
    raise UserDataError(f"{path}: x_{split} has shape {x.shape}: no axis of 1, 3 or 4 channels "
                        "first or last")
