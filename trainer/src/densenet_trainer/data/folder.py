"""Folder layout: ``<data_dir>/train/<class>/<image>`` and ``<data_dir>/val/<class>/<image>``.

The class index is the position of the class folder name in the sorted list of the folders
under ``train/`` (for both splits, so a class missing from ``val/`` does not shift labels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import tensorflow as tf

from densenet_trainer.data import schema
from densenet_trainer.errors import DataError


@dataclass(frozen=True)
class FolderSplit:
    classes: list[str]  # class folder names; index = label
    paths: list[str]
    labels: list[int]  # 0-based


def split_dir(data_dir: str, split: str) -> str | None:
    """The folder holding ``split`` (``val/`` for "validation"), or None if there is none."""
    for name in schema.FOLDER_NAMES[split]:
        path = os.path.join(data_dir, name)
        if tf.io.gfile.isdir(path):
            return path
    return None


def _subdirs(path: str) -> list[str]:
    return sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(path)
        if not name.startswith(".") and tf.io.gfile.isdir(os.path.join(path, name))
    )


def _images(path: str) -> list[str]:
    return sorted(
        name
        for name in tf.io.gfile.listdir(path)
        if not name.startswith(".") and name.lower().endswith(schema.IMAGE_EXTENSIONS)
    )


def class_names(data_dir: str) -> list[str]:
    """Sorted class folder names, from ``train/`` (or the validation folder if no train/)."""
    root = split_dir(data_dir, "train") or split_dir(data_dir, "validation")
    return _subdirs(root) if root else []


def list_split(data_dir: str, split: str) -> FolderSplit:
    """All images of ``split`` with their labels; raises DataError if there are none."""
    root = split_dir(data_dir, split)
    wanted = " or ".join(f"{name}/" for name in schema.FOLDER_NAMES[split])
    if root is None:
        raise DataError(f"--data_dir {data_dir}: no {wanted} folder for the {split} split")
    classes = class_names(data_dir)
    index = {name: i for i, name in enumerate(classes)}
    paths: list[str] = []
    labels: list[int] = []
    for name in _subdirs(root):
        if name not in index:
            raise DataError(
                f"--data_dir {data_dir}: class folder {os.path.join(root, name)} has no"
                " counterpart under train/; both splits must use the same class folders"
            )
        images = _images(os.path.join(root, name))
        paths += [os.path.join(root, name, image) for image in images]
        labels += [index[name]] * len(images)
    if not paths:
        raise DataError(
            f"--data_dir {data_dir}: no images under {root}; expected"
            f" {root}/<class>/<image>{'|'.join(schema.IMAGE_EXTENSIONS)}"
        )
    return FolderSplit(classes=classes, paths=paths, labels=labels)


def check_num_classes(data_dir: str, classes: list[str], num_classes: int) -> None:
    if len(classes) > num_classes:
        raise DataError(
            f"--num_classes {num_classes}: --data_dir {data_dir} has {len(classes)} class"
            f" folders under train/; set --num_classes {len(classes)} or remove folders"
        )


def count_examples(data_dir: str, split: str) -> int | None:
    root = split_dir(data_dir, split)
    if root is None:
        return None
    return sum(len(_images(os.path.join(root, name))) for name in _subdirs(root))
