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

import pytest

from devdata.digits import DIGIT_NAMES, IMAGE_SIZE, DigitsSplit, splits, write_folder


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


@pytest.fixture(scope="session")
def digits_splits() -> tuple[DigitsSplit, DigitsSplit]:
    """(train, validation) digits arrays behind both datasets."""
    return splits()


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
