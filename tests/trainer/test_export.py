"""The final SavedModel serves probabilities and evaluates like seed 002's --only_eval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from trainer_cli import SMALL, run


@pytest.mark.slow
def test_export_then_only_eval(tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    train = run(
        "--synthetic",
        *SMALL,
        "--max_train_steps",
        "2",
        "--display_every",
        "1",
        "--log_dir",
        str(log_dir),
        timeout=300,
    )
    assert train.returncode == 0, train.stdout + train.stderr
    saved = log_dir / "saved_model"
    assert f"saved model: {saved}" in train.stdout
    assert (saved / "saved_model.pb").exists()
    # Written beside and renamed into place (test_atomic_export.py): nothing left beside it.
    assert not [p.name for p in log_dir.iterdir() if p.name.startswith(".saved_model")]
    # Keras prints every captured variable when exporting; the log must stay readable.
    assert len(train.stdout.splitlines()) < 15, train.stdout

    evaluate = run(
        "--synthetic",
        *SMALL,
        "--only_eval",
        str(saved),
        "--bfloat16",
        "false",
        "--log_dir",
        str(tmp_path / "eval"),
        timeout=300,
    )
    assert evaluate.returncode == 0, evaluate.stdout + evaluate.stderr
    assert re.search(
        r"^eval: step: 0 top1: [0-9.]+ top5: [0-9.]+ examples: 4$", evaluate.stdout, re.M
    ), evaluate.stdout


def test_evaluating_a_weights_file_of_another_head_is_refused(tmp_path: Path) -> None:
    """A .weights.h5 of a 10-class model evaluated as a 5-class one: one line naming the flag,
    not random head weights; a warm start from the same file re-initialises the head."""
    from types import SimpleNamespace

    from densenet_trainer.config import ModelConfig
    from densenet_trainer.errors import UserError
    from densenet_trainer.evaluation import load_weights
    from densenet_trainer.model import build_model

    path = str(tmp_path / "ten.weights.h5")
    build_model(ModelConfig(), 10, 32).save_weights(path)
    task = SimpleNamespace(model=build_model(ModelConfig(), 5, 32))
    with pytest.raises(UserError, match=r"^--only_eval .*ten\.weights\.h5: weights do not fit"):
        load_weights(task, path, "only_eval", with_step=True)
    assert load_weights(task, path, "pretrained", with_step=False) == path
