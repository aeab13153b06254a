"""Training input pipeline throughput on ImageNet-sized JPEGs (target: >= 250 img/s per core).

Writes a few hundred 500x375 JPEGs (noise on colour gradients, ~ImageNet file sizes) into
temporary TFRecord shards in the standard schema, then runs ``create_dataset`` (training:
random-resized crop, flip, batch, normalize) to 224x224 for ``--seconds`` per run and prints
images/s in total and per usable core (``os.sched_getaffinity``), and images per CPU-second of
this process (the per-core figure that other load on the machine does not distort), median of
``--runs``.

    .venv/bin/python benchmarks/input_pipeline.py [--seconds 10] [--runs 3]
    .venv/bin/python benchmarks/input_pipeline.py --compare keras

``--compare keras``: the same JPEGs written once more as a folder (``train/<class>/*.jpg``),
and on that folder, in alternating runs, ours (the folder reader, same augmentation) against
what a Keras user writes: ``keras.utils.image_dataset_from_directory`` (decode, resize to
256x256) then ``RandomCrop(224, 224)``, ``RandomFlip("horizontal")`` and ``Rescaling`` as
preprocessing layers in a ``map``, repeated and prefetched. Keras has no random-resized-crop
layer, so its crop is a fixed-size random crop of the resized image: less work than ours.
Prints both sides' medians and ours / Keras.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from densenet_trainer.data import create_dataset
from densenet_trainer.data.schema import shard_name
from densenet_trainer.prepare import encode_example

TARGET_PER_CORE = 250.0


def fake_jpeg(rng: np.random.Generator, height: int = 375, width: int = 500) -> bytes:
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    colour = rng.uniform(0, 255, size=(1, 1, 3)).astype(np.float32)
    image = colour * (0.5 * y + 0.5 * x) + rng.normal(0, 20, size=(height, width, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(image, quality=90).numpy()


def write_shards(directory: str, num_images: int, num_shards: int, num_classes: int) -> int:
    rng = np.random.default_rng(0)
    total = 0
    for index in range(num_shards):
        path = os.path.join(directory, shard_name("train", index, num_shards))
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(index, num_images, num_shards):
                jpeg = fake_jpeg(rng)
                total += len(jpeg)
                writer.write(
                    encode_example(
                        jpeg,
                        label=i % num_classes,
                        synset=f"n{i % num_classes:08d}",
                        text="synthetic",
                        height=375,
                        width=500,
                        filename=f"img_{i}.JPEG",
                    )
                )
    return total


def write_folder(tfrecord_dir: str, folder: str) -> None:
    """The same images as JPEG files in the folder layout: ``folder/train/<class>/*.jpg``."""
    files = tf.io.gfile.glob(os.path.join(tfrecord_dir, "train-*"))
    features = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    }
    for i, record in enumerate(tf.data.TFRecordDataset(sorted(files))):
        example = tf.io.parse_single_example(record, features)
        class_dir = os.path.join(folder, "train", f"c{int(example['image/class/label']):03d}")
        os.makedirs(class_dir, exist_ok=True)
        with open(os.path.join(class_dir, f"{i}.jpg"), "wb") as f:
            f.write(example["image/encoded"].numpy())


def keras_dataset(folder: str, batch_size: int, seed: int) -> tf.data.Dataset:
    """What a Keras user writes for the same training input."""
    augment = keras.Sequential(
        [
            keras.layers.RandomCrop(224, 224, seed=seed),
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
        ]
    )
    dataset = keras.utils.image_dataset_from_directory(
        os.path.join(folder, "train"),
        image_size=(256, 256),
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        verbose=False,
    )
    dataset = dataset.map(
        lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.repeat().prefetch(tf.data.AUTOTUNE)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ours(data_dir: str, batch_size: int, num_classes: int, seed: int) -> tf.data.Dataset:
    return create_dataset(
        data_dir=data_dir,
        split="train",
        batch_size=batch_size,
        image_size=224,
        num_classes=num_classes,
        training=True,
        seed=seed,
    )


def measure(dataset: tf.data.Dataset, seconds: float) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process)."""
    iterator = iter(dataset)
    for _ in range(3):  # warm-up: thread pools, autotune, file cache
        next(iterator)
    images, start, cpu_start = 0, time.perf_counter(), cpu_seconds()
    while time.perf_counter() - start < seconds:
        images += int(next(iterator)[1].shape[0])
    return images / (time.perf_counter() - start), images / (cpu_seconds() - cpu_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", choices=["keras"], help="also run the Keras pipeline")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as folder:
        size = write_shards(data_dir, args.images, args.shards, num_classes=100)
        print(
            f"{args.images} JPEGs 500x375, mean {size / args.images / 1024:.0f} KiB,"
            f" {args.shards} shards; {cores} usable cores (os.sched_getaffinity)"
        )
        sides = {"ours": lambda seed: ours(data_dir, args.batch_size, 100, seed)}
        if args.compare == "keras":
            write_folder(data_dir, folder)
            print("the same JPEGs as a folder: ours reads the folder, against Keras's")
            sides = {
                "ours": lambda seed: ours(folder, args.batch_size, 100, seed),
                "keras": lambda seed: keras_dataset(folder, args.batch_size, seed),
            }
        rates: dict[str, list[float]] = {side: [] for side in sides}
        cpu_rates: dict[str, list[float]] = {side: [] for side in sides}
        for run in range(args.runs):
            for side, make in sides.items():
                rate, cpu_rate = measure(make(run), args.seconds)
                rates[side].append(rate)
                cpu_rates[side].append(cpu_rate)
                print(
                    f"run {run + 1}, {side}: {rate:.1f} img/s total, {rate / cores:.1f} img/s"
                    f" per core; {cpu_rate:.1f} img per CPU-second"
                )
    print(f"load average (other processes share these cores): {os.getloadavg()[0]:.2f}")
    for side in sides:
        median, cpu_median = statistics.median(rates[side]), statistics.median(cpu_rates[side])
        print(
            f"median, {side}: {median:.1f} img/s total, {median / cores:.1f} img/s per core"
            f" (wall clock); {cpu_median:.1f} img per CPU-second"
        )
    cpu_median = statistics.median(cpu_rates["ours"])
    verdict = "meets" if cpu_median >= TARGET_PER_CORE else "below"
    print(
        f"ours: {cpu_median:.1f} img per CPU-second (per core, independent of other load;"
        f" {verdict} the {TARGET_PER_CORE:.0f} img/s per core target)"
    )
    if "keras" in sides:
        for what, table in (("img/s", rates), ("img per CPU-second", cpu_rates)):
            ratio = statistics.median(table["ours"]) / statistics.median(table["keras"])
            print(f"ours / keras, {what}: {ratio:.2f}")


if __name__ == "__main__":
    main()
