"""The final model as a SavedModel that returns class probabilities."""

from __future__ import annotations

import os

import tensorflow as tf

from . import compat
from .model import build_model, with_softmax
from .task import ClassificationTask


def export(task: ClassificationTask, path: str) -> str:
    """Called outside any strategy scope: the copy saves without collectives and carries no
    strategy-specific variables."""
    cfg = task.config
    plain = build_model(cfg.model, cfg.data.num_classes, cfg.data.image_size)
    plain.set_weights(task.model.get_weights())
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    compat.export_saved_model(with_softmax(plain), path)
    return path
