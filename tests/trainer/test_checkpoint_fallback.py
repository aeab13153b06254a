"""An unreadable latest checkpoint: resume from the newest readable one and say so."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import tensorflow as tf
from trainer_cli import SMALL, STEP_RE, run

from densenet_trainer.checkpoints import (
    Checkpointer,
    checkpoints_newest_first,
    unreadable_line,
    unreadable_reason,
)
from densenet_trainer.errors import ExitCode, UserError

# The operator reads this line (an Event): its form is a contract.
FALLBACK_RE = re.compile(r"^checkpoint: (\S+) is unreadable \((.+)\); falling back to (\S+)$", re.M)


def corrupt(prefix: str) -> None:
    """Overwrite bytes in the middle of the data file: a checksum mismatch on read."""
    data = f"{prefix}.data-00000-of-00001"
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xa5" * min(64, size // 2))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, path: str, reason: str, older: str) -> None:
        self.calls.append((path, reason, older))


def _saved(log_dir: Path, steps: tuple[int, ...]) -> tuple[tf.train.Checkpoint, tf.Variable]:
    weights = tf.Variable(tf.zeros([256]))
    checkpoint = tf.train.Checkpoint(weights=weights)
    manager = tf.train.CheckpointManager(checkpoint, str(log_dir), max_to_keep=5)
    for step in steps:
        weights.assign(tf.fill([256], float(step)))
        manager.save(checkpoint_number=step)
    weights.assign(tf.zeros([256]))
    return checkpoint, weights


def test_newest_first_from_the_state_file_then_the_disk(tmp_path: Path) -> None:
    _saved(tmp_path, (2, 4, 6))
    expected = [str(tmp_path / f"ckpt-{s}") for s in (6, 4, 2)]
    assert checkpoints_newest_first(str(tmp_path)) == expected
    (tmp_path / "checkpoint").write_text("garbage {")  # the state file lost too
    assert checkpoints_newest_first(str(tmp_path)) == expected
    assert checkpoints_newest_first(str(tmp_path / "none")) == []


def test_unreadable_latest_falls_back_to_the_newest_readable(tmp_path: Path) -> None:
    checkpoint, weights = _saved(tmp_path, (2, 4, 6))
    corrupt(str(tmp_path / "ckpt-6"))
    os.remove(tmp_path / "ckpt-4.index")
    calls = Recorder()
    restored = Checkpointer(checkpoint, str(tmp_path), is_chief=False, keep=5).restore_latest(
        on_unreadable=calls
    )
    assert restored == str(tmp_path / "ckpt-2")
    assert float(weights[0]) == 2.0
    # The state file still lists ckpt-4, whose index is gone: skipped as unreadable too.
    assert [(c[0], c[2]) for c in calls.calls] == [
        (str(tmp_path / "ckpt-6"), str(tmp_path / "ckpt-4")),
        (str(tmp_path / "ckpt-4"), str(tmp_path / "ckpt-2")),
    ]
    path, reason, older = calls.calls[0]
    assert "Checksum does not match" in reason and "\n" not in reason
    line = unreadable_line(path, reason, older)
    assert FALLBACK_RE.fullmatch(line).groups() == (path, reason, older)


def test_no_readable_checkpoint_is_the_usage_error(tmp_path: Path) -> None:
    checkpoint, _ = _saved(tmp_path, (2, 4))
    corrupt(str(tmp_path / "ckpt-2"))
    corrupt(str(tmp_path / "ckpt-4"))
    calls = Recorder()
    with pytest.raises(UserError, match=r"no checkpoint is readable \(.*ckpt-4: .*ckpt-2: ") as e:
        Checkpointer(checkpoint, str(tmp_path), True, 5).restore_latest(on_unreadable=calls)
    assert e.value.exit_code == ExitCode.USAGE
    assert [c[0] for c in calls.calls] == [str(tmp_path / "ckpt-4")]  # nothing after ckpt-2


def test_a_readable_checkpoint_of_another_model_does_not_fall_back(tmp_path: Path) -> None:
    _saved(tmp_path, (2, 4))
    other = tf.train.Checkpoint(weights=tf.Variable(tf.zeros([3])))
    calls = Recorder()
    with pytest.raises(UserError, match=r"ckpt-4 does not fit this model"):
        Checkpointer(other, str(tmp_path), True, 5).restore_latest(on_unreadable=calls)
    assert calls.calls == []
    assert unreadable_reason(str(tmp_path / "ckpt-4")) is None


def _args(log_dir: Path, steps: int) -> list[str]:
    return [
        "--synthetic",
        *SMALL,
        "--max_train_steps",
        str(steps),
        "--save_checkpoints_steps",
        "2",
        "--display_every",
        "1",
        "--log_dir",
        str(log_dir),
        "--export",
        "false",
    ]


@pytest.mark.slow
def test_trainer_resumes_from_the_checkpoint_before_a_corrupt_latest(tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    first = run(*_args(log_dir, 4))
    assert first.returncode == 0, first.stdout + first.stderr
    latest = tf.train.latest_checkpoint(str(log_dir))
    assert latest == str(log_dir / "ckpt-4")
    corrupt(latest)

    again = run(*_args(log_dir, 6))
    assert again.returncode == 0, again.stdout + again.stderr
    fallback = FALLBACK_RE.findall(again.stdout)
    assert len(fallback) == 1, again.stdout
    assert fallback[0][0] == latest and fallback[0][2] == str(log_dir / "ckpt-2")
    assert "Checksum does not match" in fallback[0][1]
    assert re.search(r"^resumed from \S*ckpt-2 at step 2$", again.stdout, re.M), again.stdout
    assert [int(s) for s in STEP_RE.findall(again.stdout)] == [3, 4, 5, 6]
    # The log file says it too, and step 4 was written anew over the corrupt one.
    assert FALLBACK_RE.search((log_dir / "densenet121.log").read_text())
    assert unreadable_reason(latest) is None
    assert tf.train.latest_checkpoint(str(log_dir)) == str(log_dir / "ckpt-6")
