"""What the input pipeline yields: labels, shapes, dtypes, normalization, order, sharding."""

from __future__ import annotations

import collections
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf
from records import write_records

from densenet_trainer.data import (
    MEAN_RGB,
    STDDEV_RGB,
    count_examples,
    create_dataset,
    detect_format,
)


def batches(**kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    dataset = create_dataset(**kwargs)
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


def eval_batches(ds, split="validation", batch_size=64, **kwargs):
    return batches(
        data_dir=ds.path,
        split=split,
        batch_size=batch_size,
        image_size=ds.image_size,
        num_classes=ds.num_classes,
        training=False,
        repeat=False,
        **kwargs,
    )


def fingerprints(result) -> collections.Counter:
    """Multiset of (label, image hash) over all examples."""
    return collections.Counter(
        (int(label), hashlib.sha1(image.tobytes()).hexdigest())
        for images, labels in result
        for image, label in zip(images, labels, strict=True)
    )


def expected_labels(ds, digits) -> collections.Counter:
    return collections.Counter(ds.label_of_digit(int(d)) for d in digits)


@pytest.fixture(params=["folder", "tfrecord"])
def digits(request, digits_folder_dataset, digits_tfrecord_dataset):
    return {"folder": digits_folder_dataset, "tfrecord": digits_tfrecord_dataset}[request.param]


def test_detect_format(digits_folder_dataset, digits_tfrecord_dataset):
    assert detect_format(digits_folder_dataset.path) == "folder"
    assert detect_format(digits_tfrecord_dataset.path) == "tfrecord"


def test_evaluation_yields_every_image_once_with_its_label(digits, digits_splits):
    result = eval_batches(digits)
    images, labels = result[0]
    assert images.shape == (64, 32, 32, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32
    # The partial last batch is kept in evaluation.
    assert [len(labels) for _, labels in result][-1] == digits.num_validation % 64
    got = collections.Counter(int(label) for _, labels in result for label in labels)
    assert got == expected_labels(digits, digits_splits[1].digits)


def test_evaluation_order_is_the_same_every_time(digits):
    first, second = eval_batches(digits), eval_batches(digits)
    for (images_a, labels_a), (images_b, labels_b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(images_a, images_b)


@pytest.mark.parametrize("num_shards", [2, 3])  # TFRecords: 2 files -> by file, 3 -> by record
def test_shards_are_disjoint_and_cover_the_split(digits, num_shards):
    whole = fingerprints(eval_batches(digits))
    parts = [
        fingerprints(eval_batches(digits, num_shards=num_shards, shard_index=i))
        for i in range(num_shards)
    ]
    assert all(parts)
    assert sum(parts, collections.Counter()) == whole


def test_count_examples(digits):
    assert count_examples(digits.path, "train") == digits.num_train
    assert count_examples(digits.path, "validation") == digits.num_validation


def test_count_examples_of_tfrecords_without_info_file_is_unknown(
    digits_tfrecord_dataset, tmp_path
):
    shard = "validation-00000-of-00002"
    os.symlink(os.path.join(digits_tfrecord_dataset.path, shard), tmp_path / shard)
    assert count_examples(str(tmp_path), "validation") is None


def test_training_repeats_in_full_batches_of_augmented_images(digits):
    dataset = create_dataset(
        data_dir=digits.path,
        split="train",
        batch_size=512,
        image_size=24,
        num_classes=digits.num_classes,
        training=True,
        seed=7,
    )
    seen = 0
    for images, labels in dataset.take(3):  # 1536 > one epoch: needs the repeat
        assert images.shape == (512, 24, 24, 3) and images.dtype == tf.float32
        assert labels.shape == (512,) and labels.dtype == tf.int32
        assert int(tf.reduce_min(labels)) >= 0 and int(tf.reduce_max(labels)) < 10
        seen += 512
    assert seen > digits.num_train


def test_one_training_pass_drops_the_partial_batch(digits_tfrecord_dataset):
    ds = digits_tfrecord_dataset
    result = batches(
        data_dir=ds.path,
        split="train",
        batch_size=200,
        image_size=16,
        num_classes=10,
        training=True,
        repeat=False,
        seed=1,
    )
    assert [len(labels) for _, labels in result] == [200] * (ds.num_train // 200)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_image_dtype(digits_tfrecord_dataset, dtype):
    ds = digits_tfrecord_dataset
    images, labels = next(
        iter(
            create_dataset(
                data_dir=ds.path,
                split="validation",
                batch_size=8,
                image_size=32,
                num_classes=10,
                training=False,
                dtype=dtype,
            )
        )
    )
    assert images.dtype == dtype and labels.dtype == tf.int32


def write_record(
    path, *, image: bytes, label: int, filename: str = "x.jpg", copies: int = 1
) -> None:
    """One Example in the standard schema, written by hand (not by densenet-prepare)."""
    write_records(path, [(image, label, filename)] * copies)


@pytest.mark.parametrize(("stored", "expected"), [(1, 0), (3, 2)])
def test_tfrecord_labels_are_one_based(tmp_path, stored, expected):
    gray = tf.io.encode_jpeg(tf.fill([20, 20, 3], tf.constant(128, tf.uint8))).numpy()
    write_record(tmp_path / "validation-00000-of-00001", image=gray, label=stored)
    [(_, labels)] = batches(
        data_dir=str(tmp_path),
        split="validation",
        batch_size=4,
        image_size=8,
        num_classes=3,
        training=False,
        repeat=False,
    )
    assert labels.tolist() == [expected]


@pytest.mark.parametrize("training", [False, True])
def test_images_come_out_normalized(tmp_path, training):
    gray = tf.io.encode_png(tf.fill([30, 40, 3], tf.constant(200, tf.uint8))).numpy()
    write_record(tmp_path / "train-00000-of-00001", image=gray, label=1)
    write_record(tmp_path / "validation-00000-of-00001", image=gray, label=1)
    images, _ = next(
        iter(
            create_dataset(
                data_dir=str(tmp_path),
                split="train" if training else "validation",
                batch_size=1,
                image_size=16,
                num_classes=1,
                training=training,
                repeat=False,
            )
        )
    )
    expected = (200.0 - np.array(MEAN_RGB)) / np.array(STDDEV_RGB)
    np.testing.assert_allclose(images.numpy()[0], np.broadcast_to(expected, (16, 16, 3)), atol=1e-4)


def test_folder_classes_are_indexed_in_sorted_name_order(tmp_path):
    """ "apple" (PNG, dark) sorts before "zebra" (JPEG, bright): apple is 0, zebra is 1."""
    for split in ("train", "val"):
        for name, value, encode in (
            ("zebra", 250, tf.io.encode_jpeg),
            ("apple", 5, tf.io.encode_png),
        ):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                image = tf.fill([12 + i, 10, 3], tf.constant(value, tf.uint8))
                (folder / f"{i}.{'png' if encode is tf.io.encode_png else 'jpg'}").write_bytes(
                    encode(image).numpy()
                )
    (tmp_path / "train" / "zebra" / "notes.txt").write_text("not an image")
    for training, split in ((False, "validation"), (True, "train")):
        [(images, labels)] = batches(
            data_dir=str(tmp_path),
            split=split,
            batch_size=6,
            image_size=8,
            num_classes=2,
            training=training,
            repeat=False,
            seed=3,
        )
        brightness = images.mean(axis=(1, 2, 3))
        assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]
        assert (brightness[labels == 0] < 0).all() and (brightness[labels == 1] > 0).all()


def test_prepared_tfrecords_keep_the_folder_class_indices(
    digits_folder_dataset, digits_tfrecord_dataset
):
    """densenet-prepare keeps the folder's class indices."""
    folder = collections.Counter(
        int(x) for _, labels in eval_batches(digits_folder_dataset) for x in labels
    )
    records = collections.Counter(
        int(x) for _, labels in eval_batches(digits_tfrecord_dataset) for x in labels
    )
    assert folder == records


def test_synthetic_data():
    dataset = create_dataset(
        data_dir=None,
        split="train",
        batch_size=4,
        image_size=16,
        num_classes=5,
        training=True,
        synthetic=True,
        dtype=tf.bfloat16,
        repeat=False,
    )
    [(images, labels)] = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert images.shape == (4, 16, 16, 3) and images.dtype == tf.bfloat16.as_numpy_dtype
    assert labels.dtype == np.int32 and ((labels >= 0) & (labels < 5)).all()


def test_training_augments_with_random_crops_and_flips(tmp_path):
    """64 copies of one image, dark left half and bright right half."""
    image = np.zeros([40, 60, 3], np.uint8)
    image[:, 30:] = 255
    write_record(
        tmp_path / "train-00000-of-00001",
        image=tf.io.encode_png(image).numpy(),
        label=1,
        copies=64,
    )
    [(images, _)] = batches(
        data_dir=str(tmp_path),
        split="train",
        batch_size=64,
        image_size=16,
        num_classes=1,
        training=True,
        repeat=False,
        seed=5,
    )
    images = images.mean(axis=3)
    left, right = images[:, :, :8].mean(axis=(1, 2)), images[:, :, 8:].mean(axis=(1, 2))
    flipped = int((left > right).sum())
    assert 10 < flipped < 54  # about half are mirrored
    # Random-resized crops: the bright share of the crop varies from draw to draw.
    assert len({round(float(x), 2) for x in images.mean(axis=(1, 2))}) > 20


@pytest.mark.parametrize(("hflip", "flipped"), [(0.0, 0), (1.0, 64)])
def test_augmentation_can_be_turned_down(tmp_path, hflip, flipped):
    """--crop_scale 1 1 keeps the whole image and --hflip sets the flip probability: the 64
    copies of the half-dark image of the test above all come out the same."""
    image = np.zeros([40, 60, 3], np.uint8)
    image[:, 30:] = 255
    png = tf.io.encode_png(image).numpy()
    write_record(tmp_path / "train-00000-of-00001", image=png, label=1, copies=64)
    [(images, _)] = batches(
        data_dir=str(tmp_path),
        split="train",
        batch_size=64,
        image_size=16,
        num_classes=1,
        training=True,
        repeat=False,
        seed=5,
        crop_scale=(1.0, 1.0),
        hflip=hflip,
    )
    images = images.mean(axis=3)
    left, right = images[:, :, :8].mean(axis=(1, 2)), images[:, :, 8:].mean(axis=(1, 2))
    assert int((left > right).sum()) == flipped
    assert np.ptp(images, axis=0).max() == 0  # no random crop: every copy is identical


def test_crop_scale_bounds_the_crop_area():
    """Windows drawn with crop_scale (0.5, 0.6) cover 50-60 % of the image (pixel rounding
    aside); ImageNet's default reaches down to 8 %."""
    from densenet_trainer.data.preprocess import random_crop_window

    shape = tf.constant([100, 100])
    windows = [random_crop_window(shape, tf.constant([i, 7]), (0.5, 0.6)) for i in range(40)]
    areas = [float(w[2] * w[3]) / 10_000 for w in windows]
    assert min(areas) >= 0.48 and max(areas) <= 0.62, areas
