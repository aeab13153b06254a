"""Input pipelines: ImageNet TFRecords, the folder layout, or synthetic data.

Use :func:`create_dataset`; it yields ``(images, labels)`` batches: images
``[B, image_size, image_size, 3]`` of ``dtype``, already normalized with :func:`normalize`
(ImageNet mean/std; the model must not normalize again), labels int32 ``[B]`` in
``[0, num_classes)``. Wrap iteration in ``with translate_data_errors(data_dir, split):`` so a
corrupt image or TFRecord met while training becomes a one-line :class:`DataError` naming
the file (see :mod:`densenet_trainer.data.checks`).
"""

from __future__ import annotations

import tensorflow as tf

from densenet_trainer.config import DEFAULT_CROP_SCALE, DEFAULT_HFLIP
from densenet_trainer.data import folder, pipeline, schema, tfrecord
from densenet_trainer.data.checks import data_error_from, translate_data_errors
from densenet_trainer.data.preprocess import MEAN_RGB, STDDEV_RGB, normalize
from densenet_trainer.data.synthetic import synthetic_dataset
from densenet_trainer.errors import DataError, UserError

__all__ = [
    "MEAN_RGB",
    "STDDEV_RGB",
    "DataError",
    "check_split",
    "count_examples",
    "create_dataset",
    "data_error_from",
    "detect_format",
    "normalize",
    "translate_data_errors",
]


def detect_format(data_dir: str) -> str:
    """ "tfrecord" (``train-*`` / ``validation-*`` shards) or "folder" (``train/``, ``val/``)."""
    if not data_dir:
        raise DataError("--data_dir is required (or use --synthetic)")
    if not tf.io.gfile.isdir(data_dir):
        raise DataError(f"--data_dir {data_dir}: no such directory")
    if any(tfrecord.list_files(data_dir, split) for split in schema.SPLITS):
        return "tfrecord"
    if any(folder.split_dir(data_dir, split) for split in schema.SPLITS):
        return "folder"
    raise DataError(
        f"--data_dir {data_dir}: no train-*/validation-* TFRecords and no train/ or val/"
        " folder; expected ImageNet TFRecord shards (train-00000-of-01024, ...) or one folder"
        " per class under train/ and val/ (densenet-prepare converts the latter)"
    )


def check_split(data_dir: str, split: str, why: str) -> None:
    """DataError now, not at the first evaluation, when ``split`` is missing (``why``: what
    needs it, for the message)."""
    if detect_format(data_dir) == "tfrecord":
        if not tfrecord.list_files(data_dir, split):
            raise DataError(
                f"--data_dir {data_dir}: no {schema.tfrecord_pattern(split)} TFRecord files for "
                f"the {split} split, which {why} needs"
            )
    elif folder.split_dir(data_dir, split) is None:
        wanted = " or ".join(f"{name}/" for name in schema.FOLDER_NAMES[split])
        raise DataError(
            f"--data_dir {data_dir}: no {wanted} folder for the {split} split, which {why} needs"
        )


def count_examples(data_dir: str, split: str) -> int | None:
    """Examples in ``split``: folder layout counts files; TFRecords need densenet-prepare's
    dataset_info.json (else None)."""
    schema.check_split(split)
    if detect_format(data_dir) == "folder":
        return folder.count_examples(data_dir, split)
    return tfrecord.count_examples(data_dir, split)


def _check_args(
    batch_size: int, image_size: int, num_classes: int, num_shards: int, shard_index: int
) -> None:
    if batch_size < 1:
        raise UserError(f"--batch_size {batch_size}: must be at least 1")
    if image_size < 1:
        raise UserError(f"--image_size {image_size}: must be at least 1")
    if num_classes < 1:
        raise UserError(f"--num_classes {num_classes}: must be at least 1")
    if not 0 <= shard_index < num_shards:
        raise UserError(f"input shard {shard_index} of {num_shards}: index out of range")


def create_dataset(
    *,
    data_dir: str | None,
    split: str,
    batch_size: int,
    image_size: int,
    num_classes: int,
    training: bool,
    synthetic: bool = False,
    num_shards: int = 1,
    shard_index: int = 0,
    seed: int | None = None,
    dtype: tf.DType = tf.float32,
    repeat: bool = True,
    crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE,
    hflip: float = DEFAULT_HFLIP,
) -> tf.data.Dataset:
    """The input pipeline of one worker (see the module docstring for what it yields).

    ``num_shards`` / ``shard_index``: ``InputContext.num_input_pipelines`` and
    ``input_pipeline_id``. ``seed``: training order and augmentation; pass a new one per
    epoch or restart. ``repeat``: repeat forever (training) or one pass (evaluation).
    ``crop_scale`` (area fraction range of the random-resized crop) and ``hflip`` (flip
    probability) shape the training augmentation only.
    Synthetic data ignores ``data_dir`` and sharding; one pass is one batch.
    Raises DataError (missing/empty data, too many classes) or UserError (bad arguments).
    """
    schema.check_split(split)
    _check_args(batch_size, image_size, num_classes, num_shards, shard_index)
    if synthetic:
        return synthetic_dataset(
            batch_size=batch_size,
            image_size=image_size,
            num_classes=num_classes,
            dtype=dtype,
            seed=seed,
            repeat=repeat,
        )
    shared = {
        "training": training,
        "num_shards": num_shards,
        "shard_index": shard_index,
        "seed": seed,
        "repeat": repeat,
    }
    if detect_format(data_dir) == "tfrecord":
        files = tfrecord.list_files(data_dir, split)
        if not files:
            raise DataError(
                f"--data_dir {data_dir}: no {schema.tfrecord_pattern(split)} TFRecord files"
                f" for the {split} split"
            )
        examples = pipeline.tfrecord_examples(files, num_classes=num_classes, **shared)
    else:
        listing = folder.list_split(data_dir, split)
        folder.check_num_classes(data_dir, listing.classes, num_classes)
        examples = pipeline.folder_examples(listing.paths, listing.labels, **shared)
    return pipeline.images_and_labels(
        examples,
        batch_size=batch_size,
        image_size=image_size,
        training=training,
        seed=seed,
        dtype=dtype,
        crop_scale=crop_scale,
        hflip=hflip,
    )
