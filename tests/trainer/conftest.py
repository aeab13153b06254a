"""Real, tiny image datasets for the trainer tests, built once per session.

Both come from scikit-learn's digits (1797 8x8 grayscale scans of handwritten digits, 10
classes), upscaled to 32x32 RGB, with a fixed stratified 20 % validation hold-out (seed 0):

``digits_folder_dataset``
    The folder layout of the Ascend recipe: ``train/<class>/*.jpg`` and ``val/<class>/*.jpg``,
    every tenth image a PNG. Class folders are the English digit names ("zero", "one", ...),
    so the sorted-name class index differs from the digit: use ``.classes`` /
    ``.label_of_digit`` to map.
``digits_tfrecord_dataset``
    The same images converted by ``densenet-prepare`` into ``train-0000N-of-00004`` and
    ``validation-0000N-of-00002`` shards (standard ImageNet schema, 1-based labels).

Each returns a :class:`DigitsDataset`: pass ``path`` as ``data_dir``, ``num_classes`` and
``image_size`` to ``create_dataset`` (or ``--data_dir``/``--num_classes``/``--image_size``).
Any test under tests/trainer can request them by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 32
PNG_EVERY = 10


@dataclass(frozen=True)
class DigitsDataset:
    path: str
    num_classes: int
    image_size: int  # native size of the stored images
    num_train: int
    num_validation: int
    classes: tuple[str, ...]  # class folder names in label order (sorted)

    def label_of_digit(self, digit: int) -> int:
        return self.classes.index(DIGIT_NAMES[digit])


@dataclass(frozen=True)
class DigitsSplit:
    images: np.ndarray  # [N, 32, 32, 3] uint8
    digits: np.ndarray  # [N] int


def _digits() -> tuple[DigitsSplit, DigitsSplit]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    scaled = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # 0..16 -> 0..255
    big = scaled.repeat(IMAGE_SIZE // 8, axis=1).repeat(IMAGE_SIZE // 8, axis=2)
    rgb = np.stack([big] * 3, axis=-1)
    train_x, val_x, train_y, val_y = train_test_split(
        rgb, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    return DigitsSplit(train_x, train_y), DigitsSplit(val_x, val_y)


def write_folder(root: Path, splits: dict[str, DigitsSplit]) -> None:
    import tensorflow as tf

    for folder, split in splits.items():
        for i, (image, digit) in enumerate(zip(split.images, split.digits, strict=True)):
            class_dir = root / folder / DIGIT_NAMES[digit]
            class_dir.mkdir(parents=True, exist_ok=True)
            if i % PNG_EVERY == 0:
                data, name = tf.io.encode_png(image), f"{i:05d}.png"
            else:
                data, name = tf.io.encode_jpeg(image, quality=95), f"{i:05d}.jpg"
            (class_dir / name).write_bytes(data.numpy())


@pytest.fixture(scope="session")
def digits_splits() -> tuple[DigitsSplit, DigitsSplit]:
    """(train, validation) digits arrays behind both datasets."""
    return _digits()


@pytest.fixture(scope="session")
def digits_folder_dataset(tmp_path_factory, digits_splits) -> DigitsDataset:
    train, val = digits_splits
    root = tmp_path_factory.mktemp("digits_folder")
    write_folder(root, {"train": train, "val": val})
    return DigitsDataset(
        path=str(root),
        num_classes=10,
        image_size=IMAGE_SIZE,
        num_train=len(train.digits),
        num_validation=len(val.digits),
        classes=tuple(sorted(DIGIT_NAMES)),
    )


@pytest.fixture(scope="session")
def digits_tfrecord_dataset(tmp_path_factory, digits_folder_dataset) -> DigitsDataset:
    from densenet_trainer import prepare

    out = tmp_path_factory.mktemp("digits_tfrecord")
    argv = ["--data_dir", digits_folder_dataset.path, "--output_dir", str(out)]
    argv += ["--train_shards", "4", "--validation_shards", "2", "--num_threads", "2"]
    assert prepare.main(argv) == 0
    assert sorted(os.listdir(out))[0] == "dataset_info.json"
    return DigitsDataset(
        path=str(out),
        num_classes=10,
        image_size=IMAGE_SIZE,
        num_train=digits_folder_dataset.num_train,
        num_validation=digits_folder_dataset.num_validation,
        classes=digits_folder_dataset.classes,
    )
