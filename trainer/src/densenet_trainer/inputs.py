"""Distributed inputs for the task: one pipeline per worker, sharded, seeded per restart."""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from . import data
from .config import IMAGENET_TRAIN_EXAMPLES, IMAGENET_VALIDATION_EXAMPLES, TrainerConfig
from .devices.base import DeviceContext


def num_examples(config: TrainerConfig, split: str) -> int:
    """Examples in a split; ImageNet's sizes where they cannot be counted (synthetic)."""
    if not config.data.synthetic:
        counted = data.count_examples(config.data.data_dir, split)
        if counted:
            return counted
    return IMAGENET_TRAIN_EXAMPLES if split == "train" else IMAGENET_VALIDATION_EXAMPLES


def epoch_size_note(config: TrainerConfig) -> str | None:
    """A log line when the epoch length is ImageNet's by assumption, not counted."""
    if config.data.synthetic or data.count_examples(config.data.data_dir, "train"):
        return None
    return (
        f"--data_dir {config.data.data_dir}: no {data.schema.INFO_FILE} with the image counts "
        f"(densenet-prepare writes it): an epoch counts as ImageNet's "
        f"{IMAGENET_TRAIN_EXAMPLES:,} training images"
    )


def steps_per_epoch(config: TrainerConfig, global_batch: int) -> int:
    return max(1, math.ceil(num_examples(config, "train") / global_batch))


def distributed_dataset(
    config: TrainerConfig, device: DeviceContext, *, training: bool, seed: int | None
) -> Any:
    d = config.data
    dtype = tf.bfloat16 if config.run.precision == "bf16" else tf.float32

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        if device.all_reduce_gradients is not None:  # Ascend: one process per device
            shards, index = device.num_workers, device.rank
        else:
            shards, index = ctx.num_input_pipelines, ctx.input_pipeline_id
        return data.create_dataset(
            data_dir=d.data_dir,
            split="train" if training else "validation",
            batch_size=d.batch_size,
            image_size=d.image_size,
            num_classes=d.num_classes,
            training=training,
            synthetic=d.synthetic,
            num_shards=shards,
            shard_index=index,
            seed=seed,
            dtype=dtype,
            repeat=training,
            crop_scale=d.crop_scale,
            hflip=d.hflip,
        )

    return device.strategy.distribute_datasets_from_function(dataset_fn)
