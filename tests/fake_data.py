"""Small, generated dataset files in the official formats, laid out where the loaders look.

Real files are tens of megabytes; these are a few kilobytes with known contents, so a parser test
can check every byte it decodes and corrupt any part of a file on purpose.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from distbench.data.datasets import IDX_IMAGES, IDX_LABELS

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of uint8 values: magic (0, 0, 8 = ubyte, ndim), big-endian dims, data."""
    magic = IDX_IMAGES if array.ndim == 3 else IDX_LABELS
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_arrays(n_train: int = 12, n_test: int = 6, seed: int = 0) -> list[np.ndarray]:
    """(train images, train labels, test images, test labels) with every label value present."""
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        (np.arange(n_test) % 10).astype(np.uint8),
    ]


def write_idx_set(folder: Path, arrays: list[np.ndarray], gz: bool = True) -> list[Path]:
    """The four MNIST-layout files in `folder`, gzipped (official names) or raw (names sans .gz)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in zip(IDX_NAMES, arrays, strict=True):
        raw = idx_bytes(array)
        path = folder / (name + ".gz" if gz else name)
        path.write_bytes(gzip.compress(raw) if gz else raw)
        paths.append(path)
    return paths


def cifar_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (n, 3, 32, 32), int64 labels) for one generated batch."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64))


def cifar_bin_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary layout: per record 1 label byte, then 1024 R, 1024 G, 1024 B bytes."""
    records = np.concatenate(
        [labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1
    )
    return records.tobytes()


def cifar_py_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Python layout: a pickled dict with b'data' (N x 3072 uint8) and b'labels' (a list)."""
    batch = {b"batch_label": b"generated", b"data": images.reshape(len(images), -1),
             b"labels": [int(v) for v in labels]}
    return pickle.dumps(batch, protocol=2)


LAYOUTS = {
    "cifar-10-batches-bin": (".bin", cifar_bin_bytes),
    "cifar-10-batches-py": ("", cifar_py_bytes),
}


def write_cifar(root: Path, layout: str, train_batches=(1, 2, 3, 4, 5), per_batch: int = 4
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`root/cifar-10/<layout>/` with the given training batches and the test batch.

    Returns the arrays written, keyed by file stem, so tests can compare what was loaded.
    """
    suffix, encode = LAYOUTS[layout]
    folder = root / "cifar-10" / layout
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, stem in [(i, f"data_batch_{i}") for i in train_batches] + [(0, "test_batch")]:
        images, labels = cifar_batch(per_batch, seed=i)
        (folder / f"{stem}{suffix}").write_bytes(encode(images, labels))
        written[stem] = (images, labels)
    return written
