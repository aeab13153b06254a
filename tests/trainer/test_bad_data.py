"""Data problems reach the operator as exit code 3 with one line naming the flag."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from trainer_cli import SMALL, error_lines, run

from densenet_trainer.errors import ExitCode


def test_missing_data_dir_is_bad_data(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dataset"
    result = run(
        "--data_dir", str(missing), *SMALL, "--log_dir", str(tmp_path / "run"), timeout=120
    )
    assert result.returncode == ExitCode.BAD_DATA, result.stdout + result.stderr
    lines = [line for line in error_lines(result.stderr) if line.startswith("densenet-train")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "--data_dir" in lines[0] and str(missing) in lines[0]


def test_missing_validation_folder_fails_at_start_not_after_training(tmp_path: Path) -> None:
    image = tmp_path / "data" / "train" / "cat" / "0.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(tf.io.encode_png(tf.zeros([32, 32, 3], tf.uint8)).numpy())
    result = run(
        "--data_dir",
        str(tmp_path / "data"),
        *SMALL,
        "--mode",
        "train_and_evaluate",
        "--max_train_steps",
        "1",
        "--display_every",
        "1",
        "--log_dir",
        str(tmp_path / "run"),
        timeout=120,
    )
    assert result.returncode == ExitCode.BAD_DATA, result.stdout + result.stderr
    assert "step:" not in result.stdout  # refused before training, not at the evaluation
    lines = [line for line in error_lines(result.stderr) if line.startswith("densenet-train")]
    assert lines == [
        f"densenet-train: error: --data_dir {tmp_path / 'data'}: no val/ or validation/ folder "
        "for the validation split, which --mode train_and_evaluate needs"
    ], result.stderr


def test_tfrecords_without_counts_say_an_epoch_is_imagenets(tmp_path: Path) -> None:
    from records import write_records

    from densenet_trainer import flags
    from densenet_trainer.inputs import epoch_size_note

    png = tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)).numpy()
    write_records(tmp_path / "train-00000-of-00001", [(png, 1, "a.png")])
    config = flags.parse(["--data_dir", str(tmp_path)])
    note = epoch_size_note(config)
    assert note and "dataset_info.json" in note and "1,281,167" in note
    (tmp_path / "dataset_info.json").write_text('{"num_examples": {"train": 1}}')
    assert epoch_size_note(config) is None
