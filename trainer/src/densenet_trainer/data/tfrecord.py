"""ImageNet TFRecord shards: listing and record parsing (schema in :mod:`.schema`)."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from densenet_trainer.data import schema
from densenet_trainer.data.checks import assert_with_source

_FEATURES = {
    schema.ENCODED: tf.io.FixedLenFeature([], tf.string),
    schema.LABEL: tf.io.FixedLenFeature([], tf.int64),
    schema.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def list_files(data_dir: str, split: str) -> list[str]:
    """The shard files of ``split`` in ``data_dir``, sorted (possibly empty)."""
    return sorted(tf.io.gfile.glob(os.path.join(data_dir, schema.tfrecord_pattern(split))))


def read_info(data_dir: str) -> dict:
    """The counts densenet-prepare wrote next to the shards, or {} if there are none."""
    path = os.path.join(data_dir, schema.INFO_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def count_examples(data_dir: str, split: str) -> int | None:
    count = read_info(data_dir).get("num_examples", {}).get(split)
    return int(count) if count is not None else None


def parse(
    record: tf.Tensor, shard: tf.Tensor, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(JPEG bytes, 0-based int32 label, source name) of one serialized Example.

    Fails, naming the shard and the image, if the label is outside 1..num_classes.
    """
    features = tf.io.parse_single_example(record, _FEATURES)
    stored = features[schema.LABEL]
    source = tf.strings.join([shard, " (", features[schema.FILENAME], ")"])
    in_range = tf.logical_and(
        stored >= schema.LABEL_OFFSET, stored < num_classes + schema.LABEL_OFFSET
    )
    check = assert_with_source(
        in_range,
        [
            source,
            f": {schema.LABEL} ",
            tf.strings.as_string(stored),
            f" is outside {schema.LABEL_OFFSET}..{num_classes - 1 + schema.LABEL_OFFSET}"
            f" (1-based) for --num_classes {num_classes}",
        ],
    )
    with tf.control_dependencies([check]):
        label = tf.cast(stored - schema.LABEL_OFFSET, tf.int32)
    return features[schema.ENCODED], label, source
