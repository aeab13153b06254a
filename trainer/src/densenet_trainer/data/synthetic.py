"""Synthetic data for benchmark mode: one random batch, made once, repeated.

No decoding cost at all, so the step time measures the accelerator, not the input pipeline.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def synthetic_dataset(
    *,
    batch_size: int,
    image_size: int,
    num_classes: int,
    dtype: tf.DType,
    seed: int | None,
    repeat: bool,
) -> tf.data.Dataset:
    """Batches of normalized-looking images and labels; one batch per pass if not repeat."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, image_size, image_size, 3), dtype=np.float32)
    labels = rng.integers(0, num_classes, size=(batch_size,), dtype=np.int32)
    dataset = tf.data.Dataset.from_tensors((tf.cast(images, dtype), tf.constant(labels)))
    return dataset.repeat() if repeat else dataset
