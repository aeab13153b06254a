"""The final model as a SavedModel that returns class probabilities, replaced atomically.

A new export is written beside the old one (``.<name>.new``), then swapped in by renames: the
old one aside (``.<name>.old``), the new one into place, the old one deleted. The aside copy is
the commit record: it exists only once the new one is complete. So a process killed at any point
leaves at ``<name>`` the old or the new complete SavedModel, or (between the two renames) both
complete beside it, and :func:`recover`, which every export runs first, finishes the swap:

========================  ===========================  ====================================
``<name>``                beside it                    recover
========================  ===========================  ====================================
old or new (complete)     ``.new`` (partial)           delete ``.new``
new                       ``.old``                     delete ``.old``
missing                   ``.old`` and ``.new``        rename ``.new`` into place, then as
                                                       above
========================  ===========================  ====================================
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import numpy as np

from . import compat
from .model import build_model, with_softmax
from .task import ClassificationTask


def export(task: ClassificationTask, path: str, weights: list[np.ndarray]) -> str:
    """Saves ``weights`` (the task model's, read by every rank: the read is a collective) in
    a plain copy of the model, built outside any strategy scope: it saves without collectives
    and carries no strategy-specific variables."""
    cfg = task.config
    plain = build_model(cfg.model, cfg.data.num_classes, cfg.data.image_size)
    plain.set_weights(weights)
    model = with_softmax(plain)
    replace_directory(path, lambda new: compat.export_saved_model(model, new))
    return path


def _beside(path: str) -> tuple[str, str]:
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{name}.new"), os.path.join(parent, f".{name}.old")


def recover(path: str) -> None:
    """Finish or undo a replacement that a killed process left half done (see above)."""
    new, old = _beside(path)
    if os.path.isdir(old):
        if not os.path.exists(path) and os.path.isdir(new):
            os.rename(new, path)  # both complete: the new one wins, as it would have
        if os.path.exists(path):
            shutil.rmtree(old)
        else:  # the new one is gone: put the old one back
            os.rename(old, path)
    if os.path.exists(new):
        shutil.rmtree(new)


def replace_directory(path: str, write: Callable[[str], None]) -> None:
    """Replace the directory ``path`` with what ``write(directory)`` writes, atomically: see
    the module's docstring."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    recover(path)
    new, old = _beside(path)
    write(new)
    _sync_tree(new)  # on disk before the old one goes aside: a node crash keeps one whole
    if os.path.exists(path):
        os.rename(path, old)
    os.rename(new, path)
    _sync(parent)
    if os.path.exists(old):
        shutil.rmtree(old)


def _sync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a directory
        pass
    finally:
        os.close(fd)


def _sync_tree(root: str) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            _sync(os.path.join(directory, name))
        _sync(directory)
