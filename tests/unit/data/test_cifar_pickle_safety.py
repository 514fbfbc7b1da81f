"""CIFAR-10 python batches are pickles: only the data they hold is loaded, never code they name.

Command: python -m pytest tests/unit/data/test_cifar_pickle_safety.py
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from distbench.core.config import DataConfig
from distbench.data import DataError, load_dataset
from distbench.data import datasets as ds


class WritesMarker:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def batch(n: int = 4, seed: int = 0) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"generated", b"data": rng.integers(0, 256, (n, 3072), np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"filenames": [f"img{i}.png".encode() for i in range(n)]}


def write_py_layout(root: Path, test_batch: bytes) -> Path:
    folder = root / "cifar-10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(seed=i), protocol=2))
    (folder / "test_batch").write_bytes(test_batch)
    return folder


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_genuine_batches_load_in_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "data_batch_1"
    expected = batch(seed=protocol)
    path.write_bytes(pickle.dumps(expected, protocol=protocol))
    images, labels = ds.parse_cifar_py(path)
    assert np.array_equal(images.reshape(len(images), -1), expected[b"data"])
    assert labels.tolist() == expected[b"labels"]


def test_a_pickle_that_runs_code_is_refused_from_a_data_dir(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hostile = {**batch(), b"labels": WritesMarker(marker)}
    folder = write_py_layout(tmp_path / "data", pickle.dumps(hostile, protocol=2))
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path / "data")))
    message = str(exc.value)
    assert "\n" not in message and str(folder / "test_batch") in message
    assert "refused to load posix.system" in message or "refused to load os.system" in message
    assert not marker.exists()


@pytest.mark.parametrize("name", [("builtins", "eval"), ("subprocess", "Popen"),
                                  ("numpy", "load"), ("_codecs", "decode")])
def test_only_the_names_a_batch_needs_are_looked_up(tmp_path: Path,
                                                   name: tuple[str, str]) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"c" + f"{name[0]}\n{name[1]}\n".encode() + b"(tR.")
    with pytest.raises(DataError, match=f"refused to load {name[0]}.{name[1]}"):
        ds.parse_cifar_py(path)


def test_bytes_are_decoded_only_from_latin1(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    # _codecs.encode('x', 'rot13'): a real codec, but not how pickle spells bytes.
    path.write_bytes(b"c_codecs\nencode\n(X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13tR.")
    with pytest.raises(DataError, match="refused to encode bytes as 'rot13'"):
        ds.parse_cifar_py(path)
