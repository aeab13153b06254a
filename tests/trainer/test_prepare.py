"""densenet-prepare: folder layout in, standard ImageNet TFRecord shards out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from densenet_trainer import prepare

PREPARE = str(Path(sys.executable).parent / "densenet-prepare")


def read_examples(paths) -> list[dict]:
    examples = []
    for record in tf.data.TFRecordDataset([str(p) for p in paths]):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        examples.append(
            {
                key: (list(f.bytes_list.value) or list(f.int64_list.value))[0]
                for key, f in features.items()
            }
        )
    return examples


@pytest.fixture
def small_folder(tmp_path) -> Path:
    """train/: cat (a 5x7 PNG and a 6x4 JPEG), ant (one JPEG); val/: ant (one JPEG)."""
    root = tmp_path / "in"
    images = {
        "train/cat/c1.png": tf.io.encode_png(tf.fill([5, 7, 3], tf.constant(90, tf.uint8))),
        "train/cat/c2.jpg": tf.io.encode_jpeg(tf.fill([6, 4, 3], tf.constant(30, tf.uint8))),
        "train/ant/a1.jpeg": tf.io.encode_jpeg(tf.fill([8, 8, 3], tf.constant(200, tf.uint8))),
        "val/ant/v1.JPG": tf.io.encode_jpeg(tf.fill([9, 3, 3], tf.constant(10, tf.uint8))),
    }
    for name, data in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data.numpy())
    return root


def test_output_fields(small_folder, tmp_path):
    out = tmp_path / "out"
    argv = ["--data_dir", str(small_folder), "--output_dir", str(out)]
    assert prepare.main([*argv, "--train_shards", "2", "--validation_shards", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset_info.json",
        "train-00000-of-00002",
        "train-00001-of-00002",
        "validation-00000-of-00001",
    ]
    train = read_examples(sorted(out.glob("train-*")))
    by_name = {e["image/filename"]: e for e in train}
    assert sorted(by_name) == [b"a1.jpeg", b"c1.png", b"c2.jpg"]
    expected = {  # label (1-based, ant < cat), synset, height, width
        b"a1.jpeg": (1, b"ant", 8, 8),
        b"c1.png": (2, b"cat", 5, 7),
        b"c2.jpg": (2, b"cat", 6, 4),
    }
    for name, (label, synset, height, width) in expected.items():
        example = by_name[name]
        assert example["image/class/label"] == label
        assert example["image/class/synset"] == synset
        assert example["image/class/text"] == synset
        assert (example["image/height"], example["image/width"]) == (height, width)
        assert example["image/format"] == b"JPEG"
        assert example["image/colorspace"] == b"RGB" and example["image/channels"] == 3
        encoded = example["image/encoded"]
        assert tf.io.is_jpeg(encoded)
        assert tf.io.decode_jpeg(encoded).shape == (height, width, 3)
    # JPEG inputs are copied byte for byte; the PNG is re-encoded as JPEG.
    assert by_name[b"c2.jpg"]["image/encoded"] == (small_folder / "train/cat/c2.jpg").read_bytes()
    pixels = tf.io.decode_jpeg(by_name[b"c1.png"]["image/encoded"]).numpy()
    assert np.abs(pixels.astype(int) - 90).max() <= 2
    [val] = read_examples([out / "validation-00000-of-00001"])
    assert (val["image/filename"], val["image/class/label"]) == (b"v1.JPG", 1)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info == {
        "num_examples": {"train": 3, "validation": 1},
        "num_classes": 2,
        "classes": ["ant", "cat"],
    }


def test_shards_mix_classes(digits_tfrecord_dataset):
    for path in sorted(Path(digits_tfrecord_dataset.path).glob("train-*")):
        labels = {e["image/class/label"] for e in read_examples([path])}
        assert labels == set(range(1, 11))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PREPARE, *args], check=False, capture_output=True, text=True, timeout=120
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("densenet-prepare:")]


def test_cli_converts_and_reports_progress(small_folder, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "--data_dir", str(small_folder), "--output_dir", str(out),
        "--train_shards", "3", "--validation_shards", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "train: 3/3 images" in result.stdout
    assert f"wrote 3 train, 1 validation examples, 2 classes, to {out}" in result.stdout
    assert len(list(out.glob("train-*-of-00003"))) == 3
    assert not list(out.glob("*.tmp"))


def test_cli_missing_input_is_bad_data(tmp_path):
    result = run_cli("--data_dir", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "o"))
    assert result.returncode == 3
    assert error_lines(result) == [
        f"densenet-prepare: error: --data_dir {tmp_path / 'nope'}: no such directory"
    ]


def test_refuses_to_overwrite_shards(small_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data_dir", str(small_folder), "--output_dir", str(out)]
    argv += ["--train_shards", "1", "--validation_shards", "1"]
    assert prepare.main(argv) == 0
    assert prepare.main(argv) == 2
    assert capsys.readouterr().err == (
        f"densenet-prepare: error: --output_dir {out}: already holds shards"
        " (train-00000-of-00001, ...); choose an empty directory\n"
    )


def test_more_shards_than_images_is_refused_before_writing(small_folder, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["--data_dir", str(small_folder), "--output_dir", str(out), "--train_shards", "2"]
    assert prepare.main(argv) == 2  # default --validation_shards 128 > 1 validation image
    assert capsys.readouterr().err == (
        "densenet-prepare: error: --validation_shards 128: more shards than the 1 validation"
        " images\n"
    )
    assert list(out.iterdir()) == []


def test_unreadable_image_names_the_file(small_folder, tmp_path, capsys):
    bad = small_folder / "train" / "cat" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "o"
    argv = ["--data_dir", str(small_folder), "--output_dir", str(out)]
    assert prepare.main([*argv, "--train_shards", "1", "--validation_shards", "1"]) == 3
    assert capsys.readouterr().err == (
        f"densenet-prepare: error: --data_dir: {bad} is not a readable JPEG or PNG image\n"
    )
    assert not list(out.glob("*.tmp"))


def test_no_train_folder(tmp_path, capsys):
    (tmp_path / "val").mkdir()
    assert prepare.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o")]) == 3
    assert "no train/ folder; expected train/<class>/<image>" in capsys.readouterr().err


def test_grayscale_jpeg_is_stored_as_rgb(tmp_path):
    (tmp_path / "in" / "train" / "gray").mkdir(parents=True)
    gray = tf.io.encode_jpeg(tf.fill([6, 5, 1], tf.constant(77, tf.uint8))).numpy()
    assert int(tf.image.extract_jpeg_shape(gray)[2]) == 1
    (tmp_path / "in" / "train" / "gray" / "g.jpg").write_bytes(gray)
    out = tmp_path / "out"
    argv = ["--data_dir", str(tmp_path / "in"), "--output_dir", str(out), "--train_shards", "1"]
    assert prepare.main(argv) == 0
    [example] = read_examples([out / "train-00000-of-00001"])
    assert tf.image.extract_jpeg_shape(example["image/encoded"]).numpy().tolist() == [6, 5, 3]
