"""Per-image decode and augmentation, and the ImageNet normalization.

Images leave the pipeline already normalized by :func:`normalize` (the "torch" mode of
``tf.keras.applications.densenet.preprocess_input``: scale to [0, 1], subtract the ImageNet
mean, divide by the std), so the model must not normalize again.

Training: random-resized crop (``sample_distorted_bounding_box``, area ``crop_scale``, by
default 8-100 %, aspect 3/4-4/3) fused with JPEG decoding (``decode_and_crop_jpeg`` decodes only
the window), resize to ``image_size``, horizontal flip with probability ``hflip`` (0.5).
PNG (folder layout) is decoded whole, then cropped.
Evaluation: central crop of 87.5 % of the shorter side, resized to ``image_size`` (the same
geometry as resizing the shorter side to ``image_size / 0.875`` then cropping the centre, but
it decodes and resizes fewer pixels).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from densenet_trainer.config import DEFAULT_CROP_SCALE, DEFAULT_HFLIP
from densenet_trainer.data.checks import assert_with_source

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
EVAL_CROP_FRACTION = 0.875
CROP_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def normalize(images: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """ImageNet mean/std normalization of RGB pixels in [0, 255], cast to ``dtype``."""
    images = tf.cast(images, tf.float32)
    images = (images - tf.constant(MEAN_RGB)) / tf.constant(STDDEV_RGB)
    return tf.cast(images, dtype)


def is_png(image_bytes: tf.Tensor) -> tf.Tensor:
    return tf.equal(tf.strings.substr(image_bytes, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)


def check_signature(image_bytes: tf.Tensor, source: tf.Tensor) -> tf.Operation:
    """Assert that the bytes start like a JPEG or a PNG; the failure names ``source``."""
    ok = tf.logical_or(tf.io.is_jpeg(image_bytes), is_png(image_bytes))
    return assert_with_source(ok, [source, ": not a JPEG or PNG image (corrupt file?)"])


def image_shape(image_bytes: tf.Tensor) -> tf.Tensor:
    """[height, width] from the JPEG or PNG header, at least 1 each, without decoding."""

    def png() -> tf.Tensor:
        # IHDR: big-endian width and height at bytes 16..24; padded so short input still parses.
        header = tf.strings.substr(tf.strings.join([image_bytes, b"\0" * 24]), 16, 8)
        width_height = tf.io.decode_raw(header, tf.int32, little_endian=False)
        return tf.reverse(width_height, [0])

    shape = tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.image.extract_jpeg_shape(image_bytes)[:2],
        png,
    )
    return tf.maximum(shape, 1)


def random_crop_window(
    shape: tf.Tensor, seed: tf.Tensor, crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE
) -> tf.Tensor:
    """[offset_y, offset_x, height, width] of a random-resized-crop window (stateless) whose
    area is a fraction in ``crop_scale`` of the image's."""
    whole = tf.constant([0.0, 0.0, 1.0, 1.0], dtype=tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([shape, [3]], 0),
        bounding_boxes=whole,
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=crop_scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    offset_y, offset_x, _ = tf.unstack(begin)
    height, width, _ = tf.unstack(size)
    return tf.stack([offset_y, offset_x, height, width])


def central_crop_window(shape: tf.Tensor) -> tf.Tensor:
    height, width = shape[0], shape[1]
    side = tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * EVAL_CROP_FRACTION, tf.int32)
    side = tf.maximum(side, 1)
    return tf.stack([(height - side + 1) // 2, (width - side + 1) // 2, side, side])


def decode_window(image_bytes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Decode only ``window`` of a JPEG; other formats are decoded whole, then cropped."""

    def other() -> tf.Tensor:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        return tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3])

    return tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3),
        other,
    )


def _ignore_errors(dataset: tf.data.Dataset) -> tf.data.Dataset:
    if hasattr(dataset, "ignore_errors"):  # TF >= 2.11
        return dataset.ignore_errors()
    return dataset.apply(tf.data.experimental.ignore_errors())


def _single_element(dataset: tf.data.Dataset) -> tuple:
    if hasattr(dataset, "get_single_element"):  # TF >= 2.6
        return dataset.get_single_element()
    return tf.data.experimental.get_single_element(dataset)


def decode_checked(
    decode: Callable[[tf.Tensor], tf.Tensor], image_bytes: tf.Tensor, source: tf.Tensor
) -> tf.Tensor:
    """``decode(image_bytes)``, failing with a message naming ``source`` if it cannot decode.

    The decode runs in a one-element dataset with ``ignore_errors``: an empty result means the
    bytes were corrupt, and the assertion then names the file (TensorFlow's own decode error
    does not). ``decode`` must be deterministic (stateless): random draws are made outside.
    """
    with tf.control_dependencies([check_signature(image_bytes, source)]):
        image_bytes = tf.identity(image_bytes)
    attempt = _ignore_errors(
        tf.data.Dataset.from_tensors(image_bytes).map(lambda b: (decode(b), True))
    )
    failed = tf.data.Dataset.from_tensors((tf.zeros([1, 1, 3], tf.uint8), False))
    image, ok = _single_element(attempt.concatenate(failed).take(1))
    check = assert_with_source(ok, [source, ": corrupt image data (cannot decode)"])
    with tf.control_dependencies([check]):
        return tf.identity(image)


def _resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")
    image.set_shape([image_size, image_size, 3])
    return image


def train_image(
    image_bytes: tf.Tensor,
    source: tf.Tensor,
    image_size: int,
    seed: int | None,
    *,
    crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE,
    hflip: float = DEFAULT_HFLIP,
) -> tf.Tensor:
    """Random-resized crop + flip, float32 pixels in [0, 255], [image_size, image_size, 3]."""
    draws = tf.random.uniform([3], maxval=2**31 - 1, dtype=tf.int32, seed=seed)
    crop_seed = draws[:2]

    def decode(b: tf.Tensor) -> tf.Tensor:
        return decode_window(b, random_crop_window(image_shape(b), crop_seed, crop_scale))

    image = _resize(decode_checked(decode, image_bytes, source), image_size)
    # draws[2] is uniform on [0, 2**31 - 1): below hflip * (2**31 - 1) with probability hflip.
    flip = tf.cast(draws[2], tf.float64) < hflip * (2**31 - 1)
    return tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)


def eval_image(image_bytes: tf.Tensor, source: tf.Tensor, image_size: int) -> tf.Tensor:
    """Central crop, float32 pixels in [0, 255], [image_size, image_size, 3]."""

    def decode(b: tf.Tensor) -> tf.Tensor:
        return decode_window(b, central_crop_window(image_shape(b)))

    return _resize(decode_checked(decode, image_bytes, source), image_size)
