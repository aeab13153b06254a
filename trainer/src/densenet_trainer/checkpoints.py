"""Checkpoints in --log_dir, written by the chief only.

In multi-worker training every worker must take part in a save (the variables may need
collectives), so non-chief workers save into a private temporary directory and delete it:
TensorFlow's documented pattern for MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

import shutil
import tempfile

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

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint in --log_dir (all workers read the chief's)."""
        latest = tf.train.latest_checkpoint(self._log_dir)
        if latest:
            try:
                self._checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as exc:
                raise UserError(
                    f"--log_dir {self._log_dir}: {latest} does not fit this model "
                    f"({str(exc).splitlines()[0].split('. ')[0]}); resume with the flags that "
                    "wrote it or use a new --log_dir"
                ) from exc
        return latest

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
