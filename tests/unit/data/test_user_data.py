"""The user's own datasets: `folder:PATH` (ImageFolder) and `npz:PATH`, and their array cache.

Command: python -m pytest tests/unit/data/test_user_data.py

Every refusal is one `UserDataError` line (exit 2) that names the file or folder; a good source
is decoded once into a cache that the workers memory-map.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distbench.core.config import DataConfig
from distbench.data import load_dataset, prepare_dataset
from distbench.data.datasets import cache_dir
from distbench.data.user_data import UserDataError, _entry, check_source, prepare


def write_png(path: Path, value: int, size: tuple[int, int] = (8, 6), mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, colour).save(path)


def image_folder(root: Path, split: bool = True, per_class: int = 3, mode: str = "L") -> Path:
    """cats are dark (value 10 + i), dogs bright (200 + i); width 8, height 6."""
    for split_name in (["train", "test"] if split else [""]):
        for cls, base in (("cat", 10), ("dog", 200)):
            for i in range(per_class):
                write_png(root / split_name / cls / f"{i}.png", base + i, mode=mode)
    return root


def load(name: str, image_size: int | None = None, **kwargs: object):
    return load_dataset(DataConfig(name=name, **kwargs), image_size)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- folders


def test_train_test_folder_is_decoded_as_uint8_nchw(tmp_path):
    data = load(f"folder:{image_folder(tmp_path / 'imgs')}")
    assert data.classes == ["cat", "dog"]
    assert data.train_x.dtype == np.uint8 and data.train_x.shape == (6, 1, 6, 8)
    assert sorted(data.train_x[:, 0, 0, 0].tolist()) == [10, 11, 12, 200, 201, 202]
    assert data.train_y.tolist().count(0) == 3 and len(data.test_y) == 6
    # Statistics of the training split in [0, 1], as for the built-in sets.
    expected = data.train_x.astype(np.float64).mean() / 255
    assert data.mean == pytest.approx([expected], rel=1e-6)
    assert isinstance(data.train_x, np.memmap)  # the workers share the cached copy


def test_one_tree_is_split_by_the_test_fraction_the_same_way_every_time(tmp_path):
    root = image_folder(tmp_path / "imgs", split=False, per_class=10)
    a = load(f"folder:{root}", test_fraction=0.3)
    assert len(a.test_y) + len(a.train_y) == 20 and len(a.test_y) == 6
    b = load(f"folder:{root}", test_fraction=0.3)
    np.testing.assert_array_equal(a.test_x, b.test_x)
    c = load(f"folder:{root}", test_fraction=0.5)
    assert len(c.test_y) == 10  # another fraction is another cache entry


def test_rgb_folder_and_image_size(tmp_path):
    root = image_folder(tmp_path / "imgs", mode="RGB")
    data = load(f"folder:{root}", image_size=4)
    assert data.train_x.shape == (6, 3, 4, 4)


def test_the_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path):
    root = image_folder(tmp_path / "imgs")
    cfg = DataConfig(name=f"folder:{root}")
    first = prepare(cfg)
    assert prepare(cfg).folder == first.folder
    png = root / "train" / "cat" / "0.png"
    write_png(png, 99)
    os.utime(png, ns=(1, 1))  # a new mtime, whatever the clock's resolution
    second = prepare(cfg)
    assert second.folder != first.folder
    assert 99 in np.load(second.folder / "x_train.npy")[:, 0, 0, 0]


def damage_meta(folder: Path) -> None:
    (folder / "meta.json").write_text('{"classes": ["cat", "dog"], "mea')


def meta_not_a_dict(folder: Path) -> None:
    (folder / "meta.json").write_text("[]")


def meta_nested_deep(folder: Path) -> None:
    (folder / "meta.json").write_text("[" * 200_000)


def meta_a_fifo(folder: Path) -> None:  # opening it to read would wait for a writer
    (folder / "meta.json").unlink()
    os.mkfifo(folder / "meta.json")


def edit_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, **changes}))


def std_of_zero(folder: Path) -> None:
    edit_meta(folder, std=[0.0])


def std_of_400_digits(folder: Path) -> None:
    edit_meta(folder, std=[10**400])


def labels_outside_the_classes(folder: Path) -> None:
    np.save(folder / "y_train.npy", np.full(6, 7, dtype=np.int64))  # two classes, label 7


def array_truncated(folder: Path) -> None:
    raw = (folder / "x_test.npy").read_bytes()
    (folder / "x_test.npy").write_bytes(raw[: len(raw) // 2])


def array_an_npz(folder: Path) -> None:
    x = np.load(folder / "x_test.npy")
    (folder / "x_test.npy").unlink()
    np.savez(folder / "x_test.npy", x)  # np.load would hand back an NpzFile
    (folder / "x_test.npy.npz").rename(folder / "x_test.npy")


def array_header_past_2_63(folder: Path) -> None:
    with (folder / "x_test.npy").open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "|u1", "fortran_order": False, "shape": (2**62, 4, 1, 1)})


@pytest.mark.parametrize("damage", [
    damage_meta, meta_not_a_dict, meta_nested_deep, meta_a_fifo, std_of_zero, std_of_400_digits,
    labels_outside_the_classes, array_truncated, array_an_npz, array_header_past_2_63])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, damage):
    """The cache is a folder of the user's that anything may change: an entry that does not
    read back whole is replaced, by the launcher and by a worker its key pins it for."""
    root = image_folder(tmp_path / "imgs")
    cfg = DataConfig(name=f"folder:{root}")
    key = prepare_dataset(cfg)
    entry = cache_dir() / "arrays" / key
    good = np.load(entry / "x_test.npy").copy()
    for name, again in (("launcher", lambda: np.load(prepare(cfg).folder / "x_test.npy")),
                        ("worker", lambda: load_dataset(cfg, None, key).test_x)):
        damage(entry)
        assert _entry(entry) is None, name
        np.testing.assert_array_equal(again(), good, err_msg=name)
        rebuilt = _entry(entry)
        assert rebuilt is not None and rebuilt.meta["std"][0] > 0, name
        assert np.load(entry / "y_train.npy").max() == 1, name
    assert [p.name for p in entry.parent.iterdir()] == [key]  # nothing left aside


def test_the_launchers_key_pins_its_entry_for_that_dataset_only(tmp_path):
    """What a worker does with the key its launcher prepared (`DISTBENCH_DATA_KEY`)."""
    root = image_folder(tmp_path / "imgs")
    cfg = DataConfig(name=f"folder:{root}")
    key = prepare_dataset(cfg)
    assert key is not None and prepare_dataset(DataConfig(name="mnist-5k")) is None
    # The launcher's snapshot, mapped without walking the folder: a file changed since the
    # launch does not reach the worker.
    png = root / "train" / "cat" / "0.png"
    write_png(png, 99)
    os.utime(png, ns=(1, 1))
    assert 99 not in load_dataset(cfg, None, key).train_x[:, 0, 0, 0]
    assert 99 in load_dataset(cfg, None).train_x[:, 0, 0, 0]  # without a key: prepared afresh
    # A key made for other data (inherited from another run) is ignored, not used.
    other = DataConfig(name=f"folder:{image_folder(tmp_path / 'other', per_class=2)}")
    assert len(load_dataset(other, None, key).train_y) == 4
    assert load_dataset(cfg, 4, key).train_x.shape == (6, 1, 4, 4)  # another --image-size
    # No entry on this machine: prepared here.
    shutil.rmtree(cache_dir() / "arrays" / key)
    assert 99 in load_dataset(cfg, None, key).train_x[:, 0, 0, 0]
    # A key that is not one is refused, never used as a path.
    with pytest.raises(UserDataError, match="not a data cache key"):
        load_dataset(cfg, None, "../../" + key[:26])


@pytest.mark.parametrize("make,expected", [
    (lambda r: r.mkdir(), "no class folders"),
    (lambda r: (r / "cat").mkdir(parents=True), "no PNG or JPEG images in class 'cat'"),
    (lambda r: (image_folder(r), write_png(r / "test" / "bird" / "0.png", 1)),
     "class"),
    (lambda r: (image_folder(r), (r / "train" / "dog" / "9.png").write_bytes(b"not a png")),
     "9.png"),
    (lambda r: (image_folder(r), write_png(r / "train" / "dog" / "9.png", 1, size=(5, 5))),
     "--image-size"),
    (lambda r: write_png(r / "cat" / "0.png", 1), "one class folder ('cat')"),
], ids=["empty", "empty-class", "class-sets-differ", "corrupt-image", "mixed-sizes", "one-class"])
def test_bad_folders_are_refused_in_one_line(tmp_path, make, expected):
    root = tmp_path / "imgs"
    make(root)
    with pytest.raises(UserDataError) as info:
        prepare_dataset(DataConfig(name=f"folder:{root}"))
    message = str(info.value)
    assert "\n" not in message and expected in message
    assert info.value.exit_code == 2


def test_mixed_sizes_name_two_sizes(tmp_path):
    root = image_folder(tmp_path / "imgs")
    write_png(root / "train" / "dog" / "9.png", 1, size=(5, 7))
    with pytest.raises(UserDataError, match=r"8x6.*5x7|5x7.*8x6"):
        prepare_dataset(DataConfig(name=f"folder:{root}"))
    assert load(f"folder:{root}", image_size=6).train_x.shape[1:] == (1, 6, 6)


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS refuses non-UTF-8 names")
def test_names_that_are_not_utf8_are_decoded(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=2)
    bad = os.fsencode(root / "train" / "cat") + b"/\xff\xfe.png"
    shutil.copy(root / "train" / "cat" / "0.png", os.fsdecode(bad))
    assert len(load(f"folder:{root}").train_y) == 5


def test_an_unusable_cache_folder_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "afile"))
    with pytest.raises(UserDataError, match=r"afile/distbench/arrays .*XDG_CACHE_HOME") as info:
        prepare_dataset(DataConfig(name=f"folder:{image_folder(tmp_path / 'imgs')}"))
    assert "\n" not in str(info.value)


def test_missing_sources_are_refused_before_any_work(tmp_path):
    for name in (f"folder:{tmp_path / 'nope'}", f"npz:{tmp_path / 'nope.npz'}", "npz:"):
        with pytest.raises(UserDataError):
            check_source(name)


# --------------------------------------------------------------------------- npz


def arrays(n: int = 12, layout: str = "NCHW", dtype: type = np.uint8, classes: int = 3
           ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = {"NCHW": (n, 3, 6, 5), "NHWC": (n, 6, 5, 3), "NHW": (n, 6, 5)}[layout]
    x = rng.integers(0, 256, shape).astype(dtype)
    if dtype != np.uint8:
        x = x / 255
    y = np.arange(n) % classes
    return {"x_train": x, "y_train": y, "x_test": x[:4], "y_test": y[:4]}


def write_npz(path: Path, **content: np.ndarray) -> str:
    np.savez(path, **content)
    return f"npz:{path}"


@pytest.mark.parametrize("layout,shape", [("NCHW", (3, 6, 5)), ("NHWC", (3, 6, 5)),
                                          ("NHW", (1, 6, 5))])
def test_npz_layouts_are_detected_and_recorded(tmp_path, layout, shape):
    given = arrays(layout=layout)
    data = load(write_npz(tmp_path / "d.npz", **given))
    assert data.input_shape == shape
    assert layout in data.source
    first = given["x_train"][0]
    expected = first.transpose(2, 0, 1) if layout == "NHWC" else first.reshape(shape)
    np.testing.assert_array_equal(data.train_x[0], expected)


def test_npz_float_images_and_class_names(tmp_path):
    data = load(write_npz(tmp_path / "d.npz", **arrays(dtype=np.float64),
                          class_names=np.array(["a", "b", "c"])))
    assert data.train_x.dtype == np.float32 and data.classes == ["a", "b", "c"]


def bad_npz(kind: str) -> dict[str, np.ndarray]:
    good = arrays()
    if kind == "missing-key":
        del good["y_test"]
    elif kind == "lengths":
        good["y_train"] = good["y_train"][:-1]
    elif kind == "labels":
        good["y_test"] = np.array([0, 1, 2, 7])
        good["class_names"] = np.array(["a", "b", "c"])
    elif kind == "negative-label":
        good["y_train"] = good["y_train"] - 1
    elif kind == "nan":
        good["x_train"] = good["x_train"] / 255
        good["x_train"][0, 0, 0, 0] = np.nan
        good["x_test"] = good["x_train"][:4]
    elif kind == "inf":
        good["x_test"] = np.full((4, 3, 6, 5), np.inf)
    elif kind == "beyond-float32":  # finite as float64, inf in the float32 cache
        good["x_train"] = good["x_train"] / 255
        good["x_test"] = np.full((4, 3, 6, 5), -1e39)
    elif kind == "mixed-dtypes":  # uint8 0..255 beside floats 0..1
        good["x_test"] = good["x_test"] / 255
    elif kind == "float-labels":
        good["y_train"] = good["y_train"].astype(float)
    elif kind == "shape":
        good["x_test"] = good["x_test"][:, :, :2]
    elif kind == "huge-label":  # without class_names, K = max label + 1 names
        good["y_train"] = good["y_train"] * 0 + 2**62
    elif kind == "0-d-images":
        good["x_train"] = np.uint8(3)
    elif kind == "0-d-labels":
        good["y_test"] = np.int64(3)
    elif kind == "0-d-names":
        good["class_names"] = np.array("abc")
    elif kind == "zero-size-axis":
        good["x_train"], good["x_test"] = np.zeros((12, 0, 5), np.uint8), np.zeros((4, 0, 5))
    return good


@pytest.mark.parametrize("kind,expected", [
    ("missing-key", "missing array(s) y_test"), ("lengths", "11 labels"),
    ("labels", "label 7 out of range 0..2"), ("negative-label", "label -1"),
    ("nan", "NaN"), ("inf", "NaN or infinite"), ("beyond-float32", "x_test holds values beyond"),
    ("mixed-dtypes", "x_train is uint8 but x_test is float64"), ("float-labels", "integer labels"),
    ("shape", "x_test images"), ("huge-label", "more classes than samples"),
    ("0-d-images", "x_train has shape ()"), ("0-d-labels", "y_test must be a 1-D"),
    ("0-d-names", "class_names must be a 1-D"), ("zero-size-axis", "x_train is empty"),
])
def test_bad_npz_is_refused_in_one_line(tmp_path, kind, expected):
    name = write_npz(tmp_path / "d.npz", **bad_npz(kind))
    with pytest.raises(UserDataError) as info:
        prepare_dataset(DataConfig(name=name))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_npz_with_pickled_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "d.npz"
    content = arrays()
    content["x_train"] = np.array([object()] * 12, dtype=object)
    np.savez(path, **content)
    with pytest.raises(UserDataError, match="not a readable npz"):
        prepare_dataset(DataConfig(name=f"npz:{path}"))


@pytest.mark.parametrize("content", ["garbage", "lone-npy"])
def test_not_an_npz_file(tmp_path, content):
    """Said plainly: numpy's own message for a non-zip file is about pickles and trusting them."""
    path = tmp_path / "d.npz"
    if content == "garbage":
        path.write_bytes(b"garbage")
    else:
        with path.open("wb") as fh:
            np.save(fh, arrays()["x_train"])
    with pytest.raises(UserDataError, match="not an npz archive") as info:
        prepare_dataset(DataConfig(name=f"npz:{path}"))
    assert "pickle" not in str(info.value)


def npz_members(path: Path, **members: bytes) -> str:
    """An npz of `arrays()` whose members named here hold these bytes instead."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays())
    with zipfile.ZipFile(buffer) as good, zipfile.ZipFile(path, "w") as out:
        for name in good.namelist():
            out.writestr(name, members.get(name.removesuffix(".npy"), good.read(name)))
    return f"npz:{path}"


def npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("members,expected", [
    # Allocated as declared, this header would ask for 78 TB.
    ({"x_train": npy_header((10**11, 28, 28)) + bytes(100)}, "declares shape (100000000000"),
    ({"y_test": b"0123456789"}, "y_test.npy is not a .npy array"),
], ids=["huge-header", "raw-bytes"])
def test_npz_members_are_checked_before_they_are_loaded(tmp_path, members, expected):
    with pytest.raises(UserDataError, match=expected.replace("(", r"\(")) as info:
        prepare_dataset(DataConfig(name=npz_members(tmp_path / "d.npz", **members)))
    assert "\n" not in str(info.value)


def test_a_truncated_npz_file(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays())
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserDataError, match="not a readable npz"):
        prepare_dataset(DataConfig(name=f"npz:{path}"))
