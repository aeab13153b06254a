"""Training input pipeline throughput on ImageNet-sized JPEGs (target: >= 250 img/s per core).

Writes a few hundred 500x375 JPEGs (noise on colour gradients, ~ImageNet file sizes) into
temporary TFRecord shards in the standard schema, then runs ``create_dataset`` (training:
random-resized crop, flip, batch, normalize) to 224x224 for ``--seconds`` per run and prints
images/s in total and per usable core (``os.sched_getaffinity``), and images per CPU-second of
this process (the per-core figure that other load on the machine does not distort), median of
``--runs``.

    .venv/bin/python benchmarks/input_pipeline.py [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

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


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    data_dir: str, seconds: float, batch_size: int, num_classes: int, seed: int
) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process)."""
    dataset = create_dataset(
        data_dir=data_dir,
        split="train",
        batch_size=batch_size,
        image_size=224,
        num_classes=num_classes,
        training=True,
        seed=seed,
    )
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
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as data_dir:
        size = write_shards(data_dir, args.images, args.shards, num_classes=100)
        print(
            f"{args.images} JPEGs 500x375, mean {size / args.images / 1024:.0f} KiB,"
            f" {args.shards} shards; {cores} usable cores (os.sched_getaffinity)"
        )
        rates, cpu_rates = [], []
        for run in range(args.runs):
            rate, cpu_rate = measure(data_dir, args.seconds, args.batch_size, 100, seed=run)
            rates.append(rate)
            cpu_rates.append(cpu_rate)
            print(
                f"run {run + 1}: {rate:.1f} img/s total, {rate / cores:.1f} img/s per core;"
                f" {cpu_rate:.1f} img per CPU-second"
            )
    median, cpu_median = statistics.median(rates), statistics.median(cpu_rates)
    print(f"load average (other processes share these cores): {os.getloadavg()[0]:.2f}")
    print(f"median: {median:.1f} img/s total, {median / cores:.1f} img/s per core (wall clock)")
    verdict = "meets" if cpu_median >= TARGET_PER_CORE else "below"
    print(
        f"median: {cpu_median:.1f} img per CPU-second (per core, independent of other load;"
        f" {verdict} the {TARGET_PER_CORE:.0f} img/s per core target)"
    )


if __name__ == "__main__":
    main()
