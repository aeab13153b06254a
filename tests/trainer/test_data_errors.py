"""Bad input data: one line naming the flag or the file, exit code BAD_DATA, no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from records import write_records

from densenet_trainer.data import create_dataset, detect_format, translate_data_errors
from densenet_trainer.errors import DataError, ExitCode, UserError


def drain(data_dir: str, split: str = "validation", *, training: bool = False, **kwargs) -> None:
    """Build the pipeline and run one pass, as the training loop does."""
    args = {"batch_size": 4, "image_size": 16, "num_classes": 10, "repeat": False}
    args.update(kwargs)
    with translate_data_errors(data_dir, split):
        dataset = create_dataset(data_dir=data_dir, split=split, training=training, **args)
        for _ in dataset:
            pass


def data_error(data_dir: str, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        drain(data_dir, **kwargs)
    error = info.value
    assert error.exit_code == ExitCode.BAD_DATA
    assert "\n" not in error.message
    assert "Traceback" not in error.message
    return error


def jpeg(value: int = 100) -> bytes:
    return tf.io.encode_jpeg(tf.fill([24, 24, 3], tf.constant(value, tf.uint8))).numpy()


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nope"
    error = data_error(str(missing))
    assert error.message == f"--data_dir {missing}: no such directory"


def test_empty_data_dir(tmp_path):
    with pytest.raises(DataError) as info:
        detect_format(str(tmp_path))
    assert info.value.message.startswith(
        f"--data_dir {tmp_path}: no train-*/validation-* TFRecords and no train/ or val/ folder;"
    )
    assert data_error(str(tmp_path)).message == info.value.message


def test_folder_split_without_images(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    error = data_error(str(tmp_path), split="train")
    assert error.message.startswith(f"--data_dir {tmp_path}: no images under {tmp_path}/train;")


def test_folder_without_validation_split(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "a.jpg").write_bytes(jpeg())
    error = data_error(str(tmp_path), split="validation")
    assert (
        error.message
        == f"--data_dir {tmp_path}: no val/ or validation/ folder for the validation split"
    )


def test_tfrecords_without_the_split(tmp_path):
    write_records(tmp_path / "train-00000-of-00001", [(jpeg(), 1, "a.jpg")])
    error = data_error(str(tmp_path), split="validation")
    assert "no validation-* TFRecord files for the validation split" in error.message


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "bad_bytes",
    [b"<html>404 not found</html>", jpeg()[:200]],  # not an image; a truncated JPEG
    ids=["garbage", "truncated-jpeg"],
)
def test_corrupt_jpeg_in_a_tfrecord_names_shard_and_image(tmp_path, training, bad_bytes):
    shard = tmp_path / "validation-00000-of-00001"
    write_records(shard, [(jpeg(), 1, "good.jpg"), (bad_bytes, 2, "n01440764_bad.JPEG")])
    error = data_error(str(tmp_path), training=training, batch_size=1)
    assert error.message.startswith(f"--data_dir {tmp_path}: {shard} (n01440764_bad.JPEG): ")
    assert "corrupt" in error.message


def test_corrupt_image_in_the_folder_layout_names_the_file(tmp_path):
    (tmp_path / "val" / "cat").mkdir(parents=True)
    (tmp_path / "val" / "cat" / "ok.jpg").write_bytes(jpeg())
    (tmp_path / "val" / "cat" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    error = data_error(str(tmp_path))
    assert error.message == (
        f"--data_dir {tmp_path}: {tmp_path}/val/cat/bad.png: corrupt image data (cannot decode)"
    )


def test_truncated_tfrecord_file_is_named(tmp_path, digits_tfrecord_dataset):
    for name in ("validation-00000-of-00002", "validation-00001-of-00002"):
        shutil.copy(f"{digits_tfrecord_dataset.path}/{name}", tmp_path / name)
    bad = tmp_path / "validation-00001-of-00002"
    bad.write_bytes(bad.read_bytes()[:-1000])
    error = data_error(str(tmp_path))
    assert error.message == (
        f"--data_dir {tmp_path}: truncated TFRecord file {bad}; re-copy or regenerate it"
    )


def test_corrupted_tfrecord_record(tmp_path, digits_tfrecord_dataset):
    name = "validation-00000-of-00002"
    data = bytearray((Path(digits_tfrecord_dataset.path) / name).read_bytes())
    data[300] ^= 0xFF  # inside the first record's payload: its CRC no longer matches
    (tmp_path / name).write_bytes(bytes(data))
    error = data_error(str(tmp_path))
    assert error.message == (
        f"--data_dir {tmp_path}: corrupt TFRecord data in split validation: corrupted record at 12"
    )


def test_label_out_of_range_names_num_classes(digits_tfrecord_dataset):
    error = data_error(digits_tfrecord_dataset.path, num_classes=5)
    assert "image/class/label" in error.message
    assert "is outside 1..5 (1-based) for --num_classes 5" in error.message
    assert f"{digits_tfrecord_dataset.path}/validation-0000" in error.message


def test_label_zero_is_out_of_range(tmp_path):
    write_records(tmp_path / "validation-00000-of-00001", [(jpeg(), 0, "zero.jpg")])
    error = data_error(str(tmp_path))
    assert "(zero.jpg): image/class/label 0 is outside 1..10" in error.message


def test_too_many_class_folders_for_num_classes(digits_folder_dataset):
    error = data_error(digits_folder_dataset.path, num_classes=5)
    assert error.message == (
        f"--num_classes 5: --data_dir {digits_folder_dataset.path} has 10 class folders under"
        " train/; set --num_classes 10 or remove folders"
    )


def test_validation_class_missing_from_train(tmp_path):
    for split, name in (("train", "cat"), ("val", "dog")):
        (tmp_path / split / name).mkdir(parents=True)
        (tmp_path / split / name / "a.jpg").write_bytes(jpeg())
    error = data_error(str(tmp_path))
    assert f"class folder {tmp_path}/val/dog has no counterpart under train/" in error.message


def test_bad_arguments_are_usage_errors(digits_tfrecord_dataset):
    with pytest.raises(UserError) as info:
        drain(digits_tfrecord_dataset.path, batch_size=0)
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message == "--batch_size 0: must be at least 1"


def test_errors_not_from_the_input_pipeline_pass_through():
    error = tf.errors.InvalidArgumentError(None, None, "Incompatible shapes: [4,10] vs. [4,5]")
    with pytest.raises(tf.errors.InvalidArgumentError), translate_data_errors("/data", "train"):
        raise error
