"""scikit-learn's digits (1797 8x8 grayscale scans of handwritten digits, 10 classes) as a
small real image dataset: upscaled to 32x32 RGB, a fixed stratified 20 % validation hold-out
(seed 0), written in seed 000's folder layout (``train/<class>/*.jpg``, ``val/<class>/*.jpg``,
every tenth image a PNG; class folders are the English digit names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 32
PNG_EVERY = 10


@dataclass(frozen=True)
class DigitsSplit:
    images: np.ndarray  # [N, 32, 32, 3] uint8
    digits: np.ndarray  # [N] int


def splits() -> tuple[DigitsSplit, DigitsSplit]:
    """(train, validation) arrays."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 - heavy, only when asked
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    digits = load_digits()
    scaled = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # 0..16 -> 0..255
    big = scaled.repeat(IMAGE_SIZE // 8, axis=1).repeat(IMAGE_SIZE // 8, axis=2)
    rgb = np.stack([big] * 3, axis=-1)
    train_x, val_x, train_y, val_y = train_test_split(
        rgb, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    return DigitsSplit(train_x, train_y), DigitsSplit(val_x, val_y)


def write_folder(root: Path, named_splits: dict[str, DigitsSplit]) -> None:
    """Write each split as ``root/<folder>/<class>/<i>.jpg|png``."""
    import tensorflow as tf  # noqa: PLC0415 - JPEG/PNG encoders

    for folder, split in named_splits.items():
        for i, (image, digit) in enumerate(zip(split.images, split.digits, strict=True)):
            class_dir = root / folder / DIGIT_NAMES[digit]
            class_dir.mkdir(parents=True, exist_ok=True)
            if i % PNG_EVERY == 0:
                data, name = tf.io.encode_png(image), f"{i:05d}.png"
            else:
                data, name = tf.io.encode_jpeg(image, quality=95), f"{i:05d}.jpg"
            (class_dir / name).write_bytes(data.numpy())


def write_dataset(root: Path) -> tuple[int, int]:
    """The folder dataset (train/ and val/) under ``root``; returns the two split sizes."""
    train, val = splits()
    write_folder(root, {"train": train, "val": val})
    return len(train.digits), len(val.digits)
