"""Checkpoints in --log_dir, written by the chief only.

In multi-worker training every worker must take part in a save (the variables may need
collectives), so non-chief workers save into a private temporary directory and delete it:
TensorFlow's documented pattern for MultiWorkerMirroredStrategy.

A resume tries the checkpoints newest first: one that cannot be read whole (a missing or
truncated file, a checksum that does not match) is skipped with a log line
(:data:`UNREADABLE_PREFIX`) and the next older one is tried; one that reads but does not fit
the model is an error, as an older one from the same flags would not fit either.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable

import tensorflow as tf

from .errors import UserError


class Checkpointer:
    def __init__(
        self, checkpoint: tf.train.Checkpoint, log_dir: str, is_chief: bool, keep: int
    ) -> None:
        self._checkpoint = checkpoint
        self._log_dir = log_dir
        self._is_chief = is_chief
        self._keep = keep
        self._manager = (
            tf.train.CheckpointManager(checkpoint, log_dir, max_to_keep=keep) if is_chief else None
        )
        self.last_saved_step: int | None = None

    def restore_latest(
        self, on_unreadable: Callable[[str, str, str], None] | None = None
    ) -> str | None:
        """Restore the newest readable checkpoint in --log_dir (all workers read the chief's).

        ``on_unreadable(path, reason, older)`` is called for each unreadable checkpoint skipped
        in favour of an older one; None when there is no checkpoint at all."""
        candidates = checkpoints_newest_first(self._log_dir)
        if not candidates:
            return None
        skipped: list[str] = []
        for i, path in enumerate(candidates):
            reason = unreadable_reason(path)
            if reason is None:
                break
            skipped.append(f"{path}: {reason}")
            if i + 1 < len(candidates) and on_unreadable is not None:
                on_unreadable(path, reason, candidates[i + 1])
        else:
            raise UserError(
                f"--log_dir {self._log_dir}: no checkpoint is readable ({'; '.join(skipped)}); "
                "restore the files or use a new --log_dir"
            )
        try:
            self._checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            raise UserError(
                f"--log_dir {self._log_dir}: {path} does not fit this model "
                f"({str(exc).splitlines()[0].split('. ')[0]}); resume with the flags that "
                "wrote it or use a new --log_dir"
            ) from exc
        return path

    def save(self, step: int) -> str | None:
        if step == self.last_saved_step:
            return None
        self.last_saved_step = step
        if self._manager is not None:
            return self._manager.save(checkpoint_number=step)
        scratch = tempfile.mkdtemp(prefix="densenet-worker-ckpt-")
        try:
            tf.train.CheckpointManager(self._checkpoint, scratch, max_to_keep=1).save(step)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return None


def written_at(prefix: str) -> float:
    """When checkpoint ``prefix`` was written: its index file's modification time.

    TensorFlow's local filesystem reports whole seconds (mtime_nsec is st_mtime * 1e9), which
    can put a checkpoint before the step it saved; a local file is read with os.stat."""
    index = prefix + ".index"
    if "://" not in index:
        return os.stat(index).st_mtime
    return float(tf.io.gfile.stat(index).mtime_nsec) / 1e9


def resolve_checkpoint(path: str, flag: str) -> str:
    """A checkpoint prefix from a directory (its newest checkpoint) or a prefix."""
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise UserError(f"--{flag} {path}: no checkpoint in this directory")
        return latest
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise UserError(f"--{flag} {path}: no such checkpoint directory or prefix")


UNREADABLE_PREFIX = "checkpoint: "  # + "<path> is unreadable (<reason>); falling back to <older>"
_REASON_CHARS = 300


def unreadable_line(path: str, reason: str, older: str) -> str:
    """The log line of a skipped checkpoint; its form is read by the operator (an Event)."""
    return f"{UNREADABLE_PREFIX}{path} is unreadable ({reason}); falling back to {older}"


def checkpoints_newest_first(log_dir: str) -> list[str]:
    """Checkpoint prefixes in ``log_dir``, newest first: the CheckpointManager's state file
    (its latest, then the rest newest first), then any other ``ckpt-<step>.index`` on disk
    (a state file that is itself lost or corrupt) by step, highest first."""
    ordered: list[str] = []
    try:
        state = tf.train.get_checkpoint_state(log_dir)  # None when missing or unparsable
    except ValueError:  # parsed, but names no checkpoint
        state = None
    if state is not None:
        # Both made absolute by TensorFlow; the latest is listed last.
        ordered.append(state.model_checkpoint_path)
        ordered += reversed(state.all_model_checkpoint_paths)
    on_disk = []
    for index in glob.glob(os.path.join(glob.escape(log_dir), "ckpt-*.index")):
        match = re.fullmatch(r"ckpt-(\d+)\.index", os.path.basename(index))
        if match:
            on_disk.append((int(match.group(1)), index[: -len(".index")]))
    ordered += [prefix for _, prefix in sorted(on_disk, reverse=True)]
    unique: dict[str, str] = {}
    for prefix in ordered:
        unique.setdefault(os.path.normpath(prefix), prefix)
    return list(unique.values())


def unreadable_reason(prefix: str) -> str | None:
    """Why the checkpoint at ``prefix`` cannot be read whole (every tensor, checksums
    verified), one line; None when it can."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, OSError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        return reason[:_REASON_CHARS]
    return None
