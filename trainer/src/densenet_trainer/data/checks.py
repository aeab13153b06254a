"""Turn bad input data into one-line :class:`~densenet_trainer.errors.DataError` s.

Why this is done the way it is: a corrupt JPEG or a truncated TFRecord only shows up while
the pipeline runs, as a ``tf.errors.InvalidArgumentError`` / ``DataLossError`` raised from
``next(iterator)`` (or from inside the training step), and TensorFlow's message names the
op, never the file. So:

* Every element carries the name of its source (folder: the image path; TFRecord: the shard
  path plus the record's ``image/filename``).
* The map function checks, in the graph, what can be checked before decoding (label range,
  JPEG/PNG signature) with ``tf.debugging.Assert`` whose message embeds the source name
  between :data:`MARKER_START` and :data:`MARKER_END`.
* Decoding itself runs in a one-element nested dataset with ``ignore_errors``; an empty
  result trips an assertion that names the source (see ``preprocess.decode_checked``).
  Nothing is skipped: a bad image stops the job with exit code BAD_DATA. The nested
  dataset costs ~0.1 ms per image, about 7 % of the CPU time per ImageNet image
  (benchmarks/input_pipeline.py: ~350 vs ~325 images per CPU-second).
* A truncated TFRecord (``DataLossError``, raised by the reader) is located afterwards by
  walking the record headers of the split's shards (:func:`find_truncated_tfrecords`):
  cheap, it reads 12 bytes per record and seeks over the payload.

The training loop wraps iteration in ``with translate_data_errors(data_dir, split):`` and
lets :class:`DataError` reach its top-level handler, which prints ``err.message``.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Iterator, Sequence

import tensorflow as tf

from densenet_trainer.data.schema import SPLITS, tfrecord_pattern
from densenet_trainer.errors import DataError

MARKER_START = "DENSENET_BAD_DATA<<"
MARKER_END = ">>"
_MARKER_RE = re.compile(re.escape(MARKER_START) + r"(.*?)" + re.escape(MARKER_END), re.S)
# Errors raised by the input pipeline mention the iterator; model errors do not.
_PIPELINE_HINTS = ("Iterator", "MapDataset", "TFRecord", "record")


def assert_with_source(condition: tf.Tensor, parts: Sequence[tf.Tensor | str]) -> tf.Operation:
    """In-graph assertion whose failure message is ``parts`` joined, between the markers."""
    message = tf.strings.join([MARKER_START, *parts, MARKER_END])
    return tf.debugging.Assert(condition, [message], summarize=1)


def message_from_error(error: tf.errors.OpError) -> str | None:
    """The marked message embedded by :func:`assert_with_source`, if this error has one."""
    match = _MARKER_RE.search(str(error.message))
    return match.group(1) if match else None


def _first_line(text: str) -> str:
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"Error in user-defined function passed to .*? with iterator: [\w:]+: ", "", text)
    for raw in text.splitlines():
        line = re.sub(r"\s*\[Op:[^\]]*\].*$", "", raw).strip()
        if line:
            return line[:300]
    return "unknown error"


def _tfrecord_end(path: str) -> tuple[int, int]:
    """(offset where a well-formed file would end, file size) by walking record headers."""
    size = tf.io.gfile.stat(path).length
    offset = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while offset < size:
            header = f.read(12)  # uint64 length + uint32 masked crc of the length
            if len(header) < 12:
                return offset, size
            (length,) = struct.unpack("<Q", header[:8])
            offset += 12 + length + 4  # payload + its crc
            if offset > size:
                return offset, size
            f.seek(offset)
    return offset, size


def find_truncated_tfrecords(paths: Sequence[str]) -> list[str]:
    """The files among ``paths`` that end in the middle of a record."""
    bad = []
    for path in paths:
        end, size = _tfrecord_end(path)
        if end != size:
            bad.append(path)
    return bad


def _split_tfrecords(data_dir: str | None, split: str | None) -> list[str]:
    if not data_dir:
        return []
    splits = [split] if split in SPLITS else list(SPLITS)
    files: list[str] = []
    for name in splits:
        files += sorted(tf.io.gfile.glob(os.path.join(data_dir, tfrecord_pattern(name))))
    return files


def data_error_from(
    error: tf.errors.OpError, data_dir: str | None = None, split: str | None = None
) -> DataError | None:
    """The :class:`DataError` an input-pipeline error stands for, or None if it is not one."""
    where = f"--data_dir {data_dir}: " if data_dir else ""
    marked = message_from_error(error)
    if marked is not None:
        return DataError(where + marked)
    text = str(error.message)
    if not any(hint in text for hint in _PIPELINE_HINTS):
        return None
    if isinstance(error, tf.errors.DataLossError):
        truncated = find_truncated_tfrecords(_split_tfrecords(data_dir, split))
        if truncated:
            names = ", ".join(truncated[:3]) + (" ..." if len(truncated) > 3 else "")
            return DataError(f"{where}truncated TFRecord file {names}; re-copy or regenerate it")
        return DataError(f"{where}corrupt TFRecord data in split {split}: {_first_line(text)}")
    if isinstance(error, tf.errors.InvalidArgumentError):
        return DataError(f"{where}bad input data in split {split}: {_first_line(text)}")
    return None


@contextlib.contextmanager
def translate_data_errors(data_dir: str | None = None, split: str | None = None) -> Iterator[None]:
    """Re-raise input-pipeline errors met inside the block as one-line DataErrors.

    Errors that do not come from the input pipeline (e.g. a shape mismatch in the model)
    pass through unchanged.
    """
    try:
        yield
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        translated = data_error_from(error, data_dir, split)
        if translated is None:
            raise
        raise translated from None
