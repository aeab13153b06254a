"""Learning-rate schedules as functions of the global step (linear warmup, then a decay)."""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from .compat import keras
from .config import OptimConfig

Schedule = Callable[[tf.Tensor], tf.Tensor]
STEPS_EVERY_EPOCHS = 30  # --lr_sched steps: x0.1 every 30 epochs (seed 002's script)


def make_schedule(config: OptimConfig, steps_per_epoch: int, total_steps: int) -> Schedule:
    """lr(step) for step = 0, 1, ... (the step about to be taken).

    Seed 002's schedules, as its keras_imagenet script defines them, hold one value per epoch
    ``e = step // steps_per_epoch`` of the run's ``E`` epochs:

    - ``steps``: ``lr * 0.1 ** (e // 30)`` (``final_lr`` is not used);
    - ``exp``: ``lr * (final / lr) ** (e / (E - 1))``, geometric from lr to final_lr;
    - ``linear``: ``final + (lr - final) * (E - 1 - e) / (E - 1)``, from lr to final_lr.

    Extras: ``cosine`` ``final + (lr - final) * (1 + cos(pi * t / T)) / 2`` over the ``T``
    steps after warmup (``t`` counts from its end), per step; ``constant``. Warmup:
    ``lr * (step + 1) / W`` for the first ``W = warmup_epochs * steps_per_epoch`` steps, in
    place of the schedule's value.
    """
    peak, final = float(config.lr), float(config.final_lr)
    warmup = round(config.warmup_epochs * steps_per_epoch)
    warmup = min(warmup, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    epochs = max(math.ceil(total_steps / steps_per_epoch), 1)
    kind = config.lr_sched

    def per_epoch(step: tf.Tensor) -> tf.Tensor:
        epoch = tf.minimum(tf.floor(step / float(steps_per_epoch)), float(epochs - 1))
        if kind == "steps":
            return peak * tf.pow(0.1, tf.floor(epoch / STEPS_EVERY_EPOCHS))
        if epochs == 1:
            return tf.fill(tf.shape(step), peak)
        if kind == "exp":
            ratio = max(final, 1e-12) / peak if peak > 0 else 1.0
            return peak * tf.pow(ratio, epoch / float(epochs - 1))
        return final + (peak - final) * (float(epochs - 1) - epoch) / float(epochs - 1)

    def decayed(step: tf.Tensor) -> tf.Tensor:
        if kind in ("steps", "exp", "linear"):
            return per_epoch(step)
        if kind == "cosine":
            frac = tf.minimum(tf.maximum(step - float(warmup), 0.0) / float(decay_steps), 1.0)
            return final + (peak - final) * 0.5 * (1.0 + tf.cos(math.pi * frac))
        return tf.fill(tf.shape(step), peak)

    def schedule(step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        after = decayed(step)
        if warmup == 0:
            return after
        ramp = peak * (step + 1.0) / float(warmup)
        return tf.where(step < float(warmup), ramp, after)

    return schedule


class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Feeds the optimizer lr(global_step) from the trainer's own step variable, which is
    checkpointed, so a restart continues the schedule where it stopped."""

    def __init__(self, schedule: Schedule, global_step: tf.Variable) -> None:
        super().__init__()
        self._schedule = schedule
        self._global_step = global_step

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        del step  # the optimizer's counter does not advance on skipped fp16 steps
        return self._schedule(self._global_step)

    def get_config(self) -> dict:
        return {}
