"""The SavedModel export replaces the old one atomically: a process SIGKILLed at any point of an
export leaves a complete SavedModel, old or new, at the final path (after the recovery every
export runs first, where the kill fell between the two renames)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from trainer_cli import env

from densenet_trainer import compat, export

CHILD = str(Path(__file__).with_name("export_child.py"))
OLD, NEW, NEXT = 1.0, 2.0, 3.0


def output_of(path: Path) -> float:
    """The value a SavedModel at ``path`` serves: it must load and run whole."""
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures["serving_default"]
    outputs = serve(tf.zeros([1, 2]))
    return float(np.asarray(next(iter(outputs.values()))).ravel()[0])


def write(path: Path, value: float) -> None:
    inputs = compat.keras.Input([2])
    dense = compat.keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=compat.keras.initializers.Constant(value)
    )
    model = compat.keras.Model(inputs, dense(inputs))
    export.replace_directory(str(path), lambda new: compat.export_saved_model(model, new))


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def kill_export_at(path: Path, value: float, stage: str, log: Path) -> None:
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, CHILD, str(path), str(value), stage],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(),
        )
    try:
        deadline = time.monotonic() + 240
        while f"paused: {stage}" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        proc.kill()


# What the final path serves right after the kill (None: nothing there), and after recovery.
CASES = {
    "writing": (OLD, OLD),
    "written": (OLD, OLD),
    "aside": (None, NEW),
    "in_place": (NEW, NEW),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(CASES))
def test_sigkill_during_export_leaves_a_complete_saved_model(tmp_path: Path, stage: str) -> None:
    path = tmp_path / "run" / "saved_model"
    write(path, OLD)
    assert output_of(path) == OLD and siblings(path) == []

    kill_export_at(path, NEW, stage, tmp_path / "child.log")
    after_kill, after_recovery = CASES[stage]
    assert siblings(path), "the kill left no trace: it did not fall inside the export"
    if after_kill is None:
        assert not path.exists()
        assert output_of(path.parent / ".saved_model.old") == OLD  # recoverable
        assert output_of(path.parent / ".saved_model.new") == NEW
    else:
        assert output_of(path) == after_kill

    export.recover(str(path))  # what the next export runs first
    assert output_of(path) == after_recovery and siblings(path) == []
    write(path, NEXT)
    assert output_of(path) == NEXT and siblings(path) == []


@pytest.mark.slow
def test_next_export_cleans_up_after_a_killed_one(tmp_path: Path) -> None:
    """No explicit recovery: the next export finishes the killed one's swap, then its own."""
    path = tmp_path / "run" / "saved_model"
    write(path, OLD)
    kill_export_at(path, NEW, "aside", tmp_path / "child.log")
    write(path, NEXT)
    assert output_of(path) == NEXT and siblings(path) == []
