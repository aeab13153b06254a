"""Hand-written TFRecords in the standard ImageNet schema (never written by densenet-prepare,
so tests of the reader do not depend on the writer)."""

from __future__ import annotations

import tensorflow as tf


def write_records(path, records: list[tuple[bytes, int, str]]) -> None:
    """One Example per (JPEG bytes, stored 1-based label, image/filename)."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label, filename in records:
            feature = {
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "image/filename": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[filename.encode()])
                ),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
