"""Keras 2 (TF 2.15, the last Gaudi stack): train a few steps, checkpoint, evaluate."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from trainer_cli import SMALL, run

KERAS2_PYTHON = Path(__file__).resolve().parents[2] / ".venv-keras2" / "bin" / "python"


@pytest.fixture
def keras2_python() -> str:
    if not KERAS2_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KERAS2_PYTHON} is missing under CI: run `make venv-keras2`")
        pytest.skip("no .venv-keras2 (make venv-keras2)")
    return str(KERAS2_PYTHON)


@pytest.mark.slow
def test_train_checkpoint_evaluate_under_keras2(keras2_python: str, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    train = run(
        "--synthetic",
        *SMALL,
        "--max_train_steps",
        "4",
        "--display_every",
        "2",
        "--save_checkpoints_steps",
        "2",
        "--export",
        "false",
        "--log_dir",
        str(log_dir),
        python=keras2_python,
        timeout=300,
    )
    assert train.returncode == 0, train.stdout + train.stderr
    assert re.search(
        r"^step:     4  epoch: +\S+  FPS: +\S+  loss:\S+  reg_loss:\S+  total_loss:\S+  "
        r"lr:\S+$",
        train.stdout,
        re.M,
    ), train.stdout
    assert (log_dir / "ckpt-2.index").exists() and (log_dir / "ckpt-4.index").exists()

    evaluate = run(
        "--synthetic",
        *SMALL,
        "--mode",
        "evaluate",
        "--checkpoint_dir",
        str(log_dir),
        "--log_dir",
        str(tmp_path / "eval"),
        python=keras2_python,
        timeout=300,
    )
    assert evaluate.returncode == 0, evaluate.stdout + evaluate.stderr
    assert f"evaluating {log_dir}/ckpt-4" in evaluate.stdout
    assert re.search(
        r"^eval: step: 4 top1: [0-9.]+ top5: [0-9.]+ examples: 4$", evaluate.stdout, re.M
    ), evaluate.stdout
