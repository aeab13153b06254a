"""tf.data plumbing shared by the sources: sharding, shuffling, decoding, batching.

Per worker (``num_shards`` input pipelines): TFRecords are sharded by file when there are at
least as many files as shards (each worker reads only its files), else by record (every worker
reads every file in a fixed order and keeps one record in ``num_shards``). Folder images are
sharded by file (one file is one element).

Training: file order reshuffled every epoch, parallel non-deterministic interleave, a record
shuffle buffer, parallel non-deterministic decode, ``drop_remainder`` batches, repeat.
Evaluation: fixed order, deterministic, partial last batch kept.
"""

from __future__ import annotations

import tensorflow as tf

from densenet_trainer.config import DEFAULT_CROP_SCALE, DEFAULT_HFLIP
from densenet_trainer.data import preprocess, tfrecord

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 10_000  # records (encoded JPEGs, ~110 kB each on ImageNet)
INTERLEAVE_CYCLE = 16  # shard files read at once
READ_BUFFER_BYTES = 8 * 1024 * 1024


def tfrecord_examples(
    files: list[str],
    *,
    num_classes: int,
    training: bool,
    num_shards: int,
    shard_index: int,
    seed: int | None,
    repeat: bool,
) -> tf.data.Dataset:
    """(image bytes, 0-based label, source name) of this worker's share of ``files``."""
    by_file = len(files) >= num_shards
    names = tf.data.Dataset.from_tensor_slices(files)
    if by_file:
        names = names.shard(num_shards, shard_index)
        if training:
            names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            names = names.repeat()

    def read(name: tf.Tensor) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(name, buffer_size=READ_BUFFER_BYTES)
        return records.map(lambda record: (record, name))

    records = names.interleave(
        read,
        cycle_length=min(len(files), INTERLEAVE_CYCLE),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        # Record sharding needs the same order in every worker.
        deterministic=not (training and by_file),
    )
    if not by_file:
        records = records.shard(num_shards, shard_index)
        if repeat:
            records = records.repeat()
    if training:
        records = records.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return records.map(
        lambda record, name: tfrecord.parse(record, name, num_classes),
        num_parallel_calls=AUTOTUNE,
        deterministic=not training,
    )


def folder_examples(
    paths: list[str],
    labels: list[int],
    *,
    training: bool,
    num_shards: int,
    shard_index: int,
    seed: int | None,
    repeat: bool,
) -> tf.data.Dataset:
    """(image bytes, 0-based label, path) of this worker's share of the images."""
    files = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    files = files.shard(num_shards, shard_index)
    if training:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    return files.map(
        lambda path, label: (tf.io.read_file(path), label, path),
        num_parallel_calls=AUTOTUNE,
        deterministic=not training,
    )


def _set_deterministic(options: tf.data.Options, value: bool) -> None:
    if hasattr(options, "deterministic"):
        options.deterministic = value
    else:  # TF < 2.6
        options.experimental_deterministic = value


def images_and_labels(
    examples: tf.data.Dataset,
    *,
    batch_size: int,
    image_size: int,
    training: bool,
    seed: int | None,
    dtype: tf.DType,
    crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE,
    hflip: float = DEFAULT_HFLIP,
) -> tf.data.Dataset:
    """Decode, augment (training) or centre-crop (evaluation), batch, normalize, prefetch."""
    if training:

        def decode(image_bytes: tf.Tensor, label: tf.Tensor, source: tf.Tensor) -> tuple:
            image = preprocess.train_image(
                image_bytes, source, image_size, seed, crop_scale=crop_scale, hflip=hflip
            )
            return image, label

    else:

        def decode(image_bytes: tf.Tensor, label: tf.Tensor, source: tf.Tensor) -> tuple:
            return preprocess.eval_image(image_bytes, source, image_size), label

    dataset = examples.map(decode, num_parallel_calls=AUTOTUNE, deterministic=not training)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    dataset = dataset.map(
        lambda images, labels: (preprocess.normalize(images, dtype), labels),
        num_parallel_calls=AUTOTUNE,
        deterministic=not training,
    )
    options = tf.data.Options()
    _set_deterministic(options, not training)
    return dataset.with_options(options).prefetch(AUTOTUNE)
