"""One entry point for every dataset: the registered ones and the user's own (`folder:`, `npz:`)."""

from __future__ import annotations

from distbench.core.config import DataConfig
from distbench.data.datasets import Dataset, load_registered
from distbench.data.user_data import is_user_dataset, load_user_dataset, prepare


def load_dataset(cfg: DataConfig | str, image_size: int | None = None,
                 key: str | None = None) -> Dataset:
    """The dataset `cfg` names. `image_size` (--image-size) resizes a user folder's images as
    they are decoded; the registered datasets are resized by the model instead. `key` is the
    launcher's `prepare_dataset` for a user dataset (ignored for the others)."""
    if isinstance(cfg, str):
        cfg = DataConfig(name=cfg)
    if is_user_dataset(cfg.name):
        return load_user_dataset(cfg, image_size, key)
    return load_registered(cfg)


def prepare_dataset(cfg: DataConfig, image_size: int | None = None) -> str | None:
    """Check and convert a user dataset now, in the launching process: bad data is refused
    before any worker starts, and the workers then map the one cached copy, whose key this
    returns (None for the built-in sets, which need nothing here)."""
    if is_user_dataset(cfg.name):
        return prepare(cfg, image_size).folder.name
    return None
