"""Write MNIST, Fashion-MNIST or CIFAR-10 as PNG files in the ImageFolder layout.

Command: python examples/make_imagefolder.py cifar10 data/cifar10-folder --limit 5000

The result, `OUT/train/<class>/*.png` and `OUT/test/<class>/*.png`, is what `--dataset
folder:OUT` reads: a stand-in for a user's own image collection, made from data distbench can
already load (`$DISTBENCH_DATA`, `--data-dir`, or its download cache). `--limit N` keeps the
first N training images and N // 5 test images, for a quick try on a laptop.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from PIL import Image

from distbench.core.config import DataConfig
from distbench.data import load_dataset


def write_split(images: np.ndarray, labels: np.ndarray, classes: list[str], folder: Path) -> None:
    """One PNG per image, under a folder per class, named by its index in the split."""
    names = [re.sub(r"[^A-Za-z0-9_-]+", "_", c) for c in classes]
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    pixels = np.round(images * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, (image, label) in enumerate(zip(pixels, labels)):
        mode = "L" if image.shape[-1] == 1 else "RGB"
        Image.fromarray(image.squeeze(-1) if mode == "L" else image, mode).save(
            folder / names[label] / f"{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["mnist", "fashion-mnist", "cifar10"])
    parser.add_argument("out", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--limit", type=int, help="first N training images, N // 5 test images")
    parser.add_argument("--data-dir", help="where the dataset lies (default: distbench's search)")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists; give a new folder")
    if args.limit is not None and args.limit < 5:
        parser.error("--limit must be >= 5")
    data = load_dataset(DataConfig(name=args.dataset, data_dir=args.data_dir))
    n_train = args.limit or len(data.train_y)
    n_test = args.limit // 5 if args.limit else len(data.test_y)
    write_split(data.train_x[:n_train], data.train_y[:n_train], data.classes, args.out / "train")
    write_split(data.test_x[:n_test], data.test_y[:n_test], data.classes, args.out / "test")
    print(f"wrote {n_train} training and {n_test} test images of {args.dataset} to {args.out}")


if __name__ == "__main__":
    main()
