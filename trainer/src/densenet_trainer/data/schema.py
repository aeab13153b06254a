"""On-disk layouts the trainer reads and ``densenet-prepare`` writes: one source of truth.

ImageNet TFRecords (the schema of the standard ``build_imagenet_data.py`` converter):
shard files ``train-00000-of-01024`` ... and ``validation-00000-of-00128`` ... holding
``tf.train.Example`` records; ``image/class/label`` is 1-based (0 is unused), readers
subtract :data:`LABEL_OFFSET`.

Folder layout (Ascend ModelZoo recipe): ``<data_dir>/train/<class>/*.jpg|jpeg|png`` and
``<data_dir>/val/<class>/*``; class folders sorted by name give the label index.
"""

from __future__ import annotations

SPLITS = ("train", "validation")

# TFRecord shard file prefixes, per split: files are named ``<prefix>-NNNNN-of-MMMMM``.
TFRECORD_PREFIX = {"train": "train", "validation": "validation"}

# Folder names, per split, in order of preference.
FOLDER_NAMES = {"train": ("train",), "validation": ("val", "validation")}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# Stored labels are 1-based; the pipeline yields ``stored - LABEL_OFFSET``.
LABEL_OFFSET = 1

# Written by densenet-prepare next to the shards: example counts per split (for epochs).
INFO_FILE = "dataset_info.json"

ENCODED = "image/encoded"
FORMAT = "image/format"
LABEL = "image/class/label"
SYNSET = "image/class/synset"
TEXT = "image/class/text"
HEIGHT = "image/height"
WIDTH = "image/width"
FILENAME = "image/filename"
COLORSPACE = "image/colorspace"
CHANNELS = "image/channels"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def tfrecord_pattern(split: str) -> str:
    """Glob pattern (relative to the data dir) of the shards of ``split``."""
    return f"{TFRECORD_PREFIX[split]}-*"


def shard_name(split: str, index: int, total: int) -> str:
    return f"{TFRECORD_PREFIX[split]}-{index:05d}-of-{total:05d}"
