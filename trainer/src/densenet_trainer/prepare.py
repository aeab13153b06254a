"""densenet-prepare: convert a folder dataset into ImageNet-style TFRecord shards.

Input: ``--data_dir`` with ``train/<class>/<image>`` and (optionally) ``val/<class>/<image>``
(JPEG or PNG). Output in ``--output_dir``: ``train-00000-of-000NN`` ... and
``validation-00000-of-000MM`` ... in the standard schema (:mod:`densenet_trainer.data.schema`):
RGB JPEG bytes (PNG, grayscale and CMYK JPEG re-encoded), 1-based ``image/class/label`` in
sorted class-folder order, synset and text = the class folder name, height, width, format,
filename; plus
``dataset_info.json`` with the example counts so the trainer knows the epoch size.
Images are spread over shards after a seeded shuffle, so every shard mixes classes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import tensorflow as tf

from densenet_trainer.data import folder, schema
from densenet_trainer.errors import DataError, ExitCode, UserError

PROG = "densenet-prepare"
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Item:
    path: str
    label: int  # 0-based
    synset: str


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def encode_example(
    jpeg: bytes, *, label: int, synset: str, text: str, height: int, width: int, filename: str
) -> bytes:
    """One serialized Example in the standard schema; ``label`` is 0-based, stored 1-based."""
    features = {
        schema.ENCODED: _bytes(jpeg),
        schema.FORMAT: _bytes(b"JPEG"),
        schema.LABEL: _int(label + schema.LABEL_OFFSET),
        schema.SYNSET: _bytes(synset.encode()),
        schema.TEXT: _bytes(text.encode()),
        schema.HEIGHT: _int(height),
        schema.WIDTH: _int(width),
        schema.FILENAME: _bytes(filename.encode()),
        schema.COLORSPACE: _bytes(b"RGB"),
        schema.CHANNELS: _int(3),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def to_jpeg(data: bytes, path: str) -> tuple[bytes, int, int]:
    """(JPEG bytes, height, width): RGB JPEGs kept as they are, other images re-encoded.

    Every image is decoded once, so a corrupt input stops the conversion naming the file.
    """
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        rgb_jpeg = bool(tf.io.is_jpeg(data)) and int(tf.image.extract_jpeg_shape(data)[2]) == 3
    except tf.errors.OpError:
        raise DataError(f"--data_dir: {path} is not a readable JPEG or PNG image") from None
    height, width = int(image.shape[0]), int(image.shape[1])
    if not rgb_jpeg:  # PNG, grayscale or CMYK JPEG: the schema promises RGB JPEG
        data = tf.io.encode_jpeg(image, quality=JPEG_QUALITY).numpy()
    return data, height, width


def example_for(item: Item) -> bytes:
    with tf.io.gfile.GFile(item.path, "rb") as f:
        data = f.read()
    jpeg, height, width = to_jpeg(data, item.path)
    return encode_example(
        jpeg,
        label=item.label,
        synset=item.synset,
        text=item.synset,
        height=height,
        width=width,
        filename=os.path.basename(item.path),
    )


def _write_shard(path: str, items: Sequence[Item], progress: _Progress) -> None:
    tmp = path + ".tmp"  # renamed when complete: a crash never leaves a short shard behind
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for item in items:
                writer.write(example_for(item))
                progress.step()
    except BaseException:
        tf.io.gfile.remove(tmp)
        raise
    tf.io.gfile.rename(tmp, path, overwrite=True)


class _Progress:
    def __init__(self, split: str, total: int) -> None:
        self.split, self.total, self.done = split, total, 0
        self.every = max(1, total // 20)

    def step(self) -> None:
        self.done += 1  # racy under threads only in the printed figure, which is fine
        if self.done % self.every == 0 or self.done == self.total:
            print(f"{self.split}: {self.done}/{self.total} images", flush=True)


def list_items(data_dir: str, split: str, num_shards: int) -> list[Item]:
    """The images of ``split`` with their labels; checks there are enough for the shards."""
    listing = folder.list_split(data_dir, split)
    items = [
        Item(path, label, listing.classes[label])
        for path, label in zip(listing.paths, listing.labels)
    ]
    if num_shards > len(items):
        flag = "--train_shards" if split == "train" else "--validation_shards"
        raise UserError(f"{flag} {num_shards}: more shards than the {len(items)} {split} images")
    return items


def write_split(
    items: list[Item], output_dir: str, split: str, *, num_shards: int, num_threads: int, seed: int
) -> None:
    """Spread ``items`` (shuffled with ``seed``) over ``num_shards`` shard files."""
    items = items[:]
    random.Random(seed).shuffle(items)
    progress = _Progress(split, len(items))
    shards = [items[i::num_shards] for i in range(num_shards)]
    paths = [
        os.path.join(output_dir, schema.shard_name(split, i, num_shards)) for i in range(num_shards)
    ]
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        for future in [pool.submit(_write_shard, p, s, progress) for p, s in zip(paths, shards)]:
            future.result()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="folder with train/ and val/")
    parser.add_argument("--output_dir", required=True, help="where the shards go")
    parser.add_argument("--train_shards", type=int, default=1024, help="(ImageNet's usual)")
    parser.add_argument("--validation_shards", type=int, default=128, help="(ImageNet's usual)")
    parser.add_argument(
        "--num_threads", type=int, default=os.cpu_count() or 1, help="shards written at once"
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed for shard contents")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    for flag in ("train_shards", "validation_shards", "num_threads"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be at least 1")
    if not tf.io.gfile.isdir(args.data_dir):
        raise DataError(f"--data_dir {args.data_dir}: no such directory")
    if folder.split_dir(args.data_dir, "train") is None:
        raise DataError(
            f"--data_dir {args.data_dir}: no train/ folder; expected"
            " train/<class>/<image> and val/<class>/<image>"
        )
    tf.io.gfile.makedirs(args.output_dir)
    existing = [
        f
        for split in schema.SPLITS
        for f in tf.io.gfile.glob(os.path.join(args.output_dir, schema.tfrecord_pattern(split)))
    ]
    if existing:
        raise UserError(
            f"--output_dir {args.output_dir}: already holds shards ({os.path.basename(existing[0])}"
            ", ...); choose an empty directory"
        )
    # List and check everything before writing anything.
    todo = {"train": list_items(args.data_dir, "train", args.train_shards)}
    if folder.split_dir(args.data_dir, "validation") is None:
        print("no val/ folder: writing train shards only", flush=True)
    else:
        todo["validation"] = list_items(args.data_dir, "validation", args.validation_shards)
    shards = {"train": args.train_shards, "validation": args.validation_shards}
    for split, items in todo.items():
        write_split(
            items,
            args.output_dir,
            split,
            num_shards=shards[split],
            num_threads=args.num_threads,
            seed=args.seed,
        )
    counts = {split: len(items) for split, items in todo.items()}
    classes = folder.class_names(args.data_dir)
    info = {"num_examples": counts, "num_classes": len(classes), "classes": classes}
    with tf.io.gfile.GFile(os.path.join(args.output_dir, schema.INFO_FILE), "w") as f:
        json.dump(info, f, indent=1)
    summary = ", ".join(f"{n} {split}" for split, n in counts.items())
    print(f"wrote {summary} examples, {len(classes)} classes, to {args.output_dir}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except UserError as error:
        print(f"{PROG}: error: {error.message}", file=sys.stderr)
        return int(error.exit_code)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
