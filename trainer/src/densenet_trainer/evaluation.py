"""Top-1 / top-5 on the validation split, from the live model, a checkpoint or a SavedModel."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from . import compat, data
from .checkpoints import resolve_checkpoint
from .config import TrainerConfig
from .devices.base import DeviceContext
from .errors import UserError
from .inputs import distributed_dataset
from .task import ClassificationTask, hits


@dataclasses.dataclass
class EvalResult:
    top1: float
    top5: float
    examples: int
    interrupted: bool = False  # a SIGTERM ended the pass early: the figures are partial


def _result(totals: tf.Tensor) -> EvalResult:
    values = [float(x) for x in totals.numpy()]
    top1, top5, count = values[:3]
    if len(values) > 3 and values[3] > 0:
        return EvalResult(0.0, 0.0, int(count), interrupted=True)
    if count == 0:
        raise data.DataError("the validation split is empty")
    return EvalResult(top1 / count, top5 / count, int(count))


def evaluate_task(
    task: ClassificationTask, config: TrainerConfig, device: DeviceContext, eval_loop=None
) -> EvalResult:
    dataset = distributed_dataset(config, device, training=False, seed=None)
    loop = eval_loop or task.make_eval_loop()
    with data.translate_data_errors(config.data.data_dir, "validation"):
        return _result(loop(dataset))


def is_saved_model(path: str) -> bool:
    return tf.io.gfile.exists(os.path.join(path, "saved_model.pb"))


def evaluate_saved_model(path: str, config: TrainerConfig) -> EvalResult:
    loaded = tf.saved_model.load(path)  # keep it referenced: it owns the variables
    serve = loaded.signatures["serving_default"]
    k = min(5, config.data.num_classes)
    d = config.data
    dataset = data.create_dataset(
        data_dir=d.data_dir,
        split="validation",
        batch_size=d.batch_size,
        image_size=d.image_size,
        num_classes=d.num_classes,
        training=False,
        synthetic=d.synthetic,
        repeat=False,
    )

    @tf.function
    def loop(ds: tf.data.Dataset) -> tf.Tensor:
        totals = tf.zeros([3])
        for images, labels in ds:
            outputs = serve(tf.cast(images, tf.float32))
            totals += hits(next(iter(outputs.values())), labels, k)
        return totals

    with data.translate_data_errors(d.data_dir, "validation"):
        return _result(loop(dataset))


def load_weights(task: ClassificationTask, source: str, flag: str, with_step: bool) -> str:
    """Load the model's weights from a checkpoint (directory or prefix) or a Keras weights
    file; ``with_step`` also restores the global step (evaluation reports it; a warm start
    begins at step 0). Evaluation needs every weight to fit; a warm start re-initialises a
    head of another size."""
    if source.endswith((".h5", ".hdf5", ".keras")):
        if not tf.io.gfile.exists(source):
            raise UserError(f"--{flag} {source}: no such file")
        try:
            compat.load_weights_file(task.model, source, skip_mismatch=not with_step)
        except (ValueError, KeyError) as exc:
            raise UserError(
                f"--{flag} {source}: weights do not fit this model "
                f"({str(exc).splitlines()[0][:200]}); check --num_classes and --image_size"
            ) from exc
        return source
    prefix = resolve_checkpoint(source, flag)
    try:
        parts = {"global_step": task.global_step} if with_step else {}
        status = tf.train.Checkpoint(model=task.model, **parts).read(prefix)
        status.expect_partial()  # the optimizer's slots are not needed
        status.assert_existing_objects_matched()  # but every model weight is
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        raise UserError(
            f"--{flag} {source}: checkpoint does not fit this model "
            f"({str(exc).splitlines()[0].split('. ')[0]}); check --num_classes, --image_size and "
            "that the same Keras major version wrote it"
        ) from exc
    return prefix
