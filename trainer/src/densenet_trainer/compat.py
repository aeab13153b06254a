"""Where Keras 2 (TF <= 2.15: the Gaudi and Ascend stacks) and Keras 3 (TF >= 2.16) differ.

Everything else in the trainer is written against the API the two share.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

keras = tf.keras
# tf.keras of Keras 2 has no __version__; only Keras 3 has the backend-neutral `ops`.
KERAS_MAJOR = int(
    str(getattr(keras, "__version__", None) or ("3" if hasattr(keras, "ops") else "2")).split(".")[
        0
    ]
)
KERAS_3 = KERAS_MAJOR >= 3

_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def set_precision(precision: str) -> None:
    keras.mixed_precision.set_global_policy(_POLICIES[precision])


def loss_scale_optimizer(optimizer: Any) -> Any:
    if KERAS_3:
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return keras.mixed_precision.LossScaleOptimizer(optimizer)


def scale_loss(optimizer: Any, loss: tf.Tensor) -> tf.Tensor:
    if KERAS_3:
        return optimizer.scale_loss(loss)
    return optimizer.get_scaled_loss(loss)


def unscale_gradients(optimizer: Any, grads: list[tf.Tensor]) -> list[tf.Tensor]:
    # Keras 3's LossScaleOptimizer unscales inside apply_gradients; Keras 2's wants it done.
    if KERAS_3:
        return grads
    return optimizer.get_unscaled_gradients(grads)


def build_optimizer(optimizer: Any, variables: Sequence[tf.Variable]) -> None:
    """Create the slot variables now, so a checkpoint restores into them and the first
    traced step does not create variables."""
    if hasattr(optimizer, "build"):
        optimizer.build(list(variables))
    else:  # Keras 2 OptimizerV2 (TF <= 2.10, Ascend's TF 2.6)
        optimizer._create_all_weights(list(variables))


def export_saved_model(model: Any, path: str) -> None:
    if KERAS_3:
        model.export(path, verbose=False)
    elif hasattr(model, "export"):  # Keras >= 2.13
        with contextlib.redirect_stdout(io.StringIO()):  # it prints every captured variable
            model.export(path)
    else:
        tf.saved_model.save(model, path)


def load_weights_file(model: Any, path: str, skip_mismatch: bool) -> None:
    """Load a Keras weights file; with ``skip_mismatch`` layers whose shapes differ (another
    head) keep their init, else a mismatch raises ValueError."""
    if KERAS_3:
        model.load_weights(path, skip_mismatch=skip_mismatch)
    elif path.endswith((".h5", ".hdf5")) and skip_mismatch:
        model.load_weights(path, by_name=True, skip_mismatch=True)
    else:
        model.load_weights(path)
