"""Learning-rate schedules as functions of the global step (linear warmup, then a decay)."""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from .compat import keras
from .config import OptimConfig

Schedule = Callable[[tf.Tensor], tf.Tensor]


def make_schedule(config: OptimConfig, steps_per_epoch: int, total_steps: int) -> Schedule:
    """lr(step) for step = 0, 1, ... (the step about to be taken).

    Warmup: ``lr * (step + 1) / W`` for the first ``W = warmup_epochs * steps_per_epoch``
    steps. After it, over the remaining ``T`` steps (``t`` counts from the end of warmup):
    cosine ``final + (lr - final) * (1 + cos(pi * t / T)) / 2``; linear from lr to final;
    constant; steps: one value per epoch ``e`` of ``E``, ``lr * (final / lr) ** (e / (E - 1))``,
    so the first epoch runs at lr and the last at final_lr (seed 002's ``--lr_sched steps``).
    """
    peak, final = float(config.lr), float(config.final_lr)
    warmup = round(config.warmup_epochs * steps_per_epoch)
    warmup = min(warmup, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    epochs = max(math.ceil(decay_steps / steps_per_epoch), 1)
    kind = config.lr_sched

    def decayed(t: tf.Tensor) -> tf.Tensor:
        frac = tf.minimum(t / float(decay_steps), 1.0)
        if kind == "cosine":
            return final + (peak - final) * 0.5 * (1.0 + tf.cos(math.pi * frac))
        if kind == "linear":
            return peak + (final - peak) * frac
        if kind == "steps":
            if epochs == 1 or peak == 0:
                return tf.fill(tf.shape(t), peak)
            epoch = tf.minimum(tf.floor(t / float(steps_per_epoch)), float(epochs - 1))
            ratio = max(final, 1e-12) / peak
            return peak * tf.pow(ratio, epoch / float(epochs - 1))
        return tf.fill(tf.shape(t), peak)

    def schedule(step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        after = decayed(tf.maximum(step - float(warmup), 0.0))
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
