"""Learning-rate values at chosen steps, computed by hand from the documented formulas."""

from __future__ import annotations

import math

import pytest
import tensorflow as tf

from densenet_trainer import flags
from densenet_trainer.config import OptimConfig
from densenet_trainer.schedules import make_schedule
from densenet_trainer.task import weight_penalty


def values(config: OptimConfig, steps_per_epoch: int, total: int, steps: list[int]) -> list:
    schedule = make_schedule(config, steps_per_epoch, total)
    return [float(schedule(s)) for s in steps]


def test_seed002_steps_is_a_tenth_every_30_epochs() -> None:
    # keras_imagenet's steps_decay: initial_lr * 0.1 ** (epoch // 30); final_lr is not used.
    # 90 epochs of 2 steps, seed 002's defaults.
    config = OptimConfig(lr=0.05, final_lr=1e-5, lr_sched="steps", warmup_epochs=0)
    got = values(config, 2, 180, [0, 59, 60, 119, 120, 179])
    assert got == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005], rel=1e-6)


def test_exp_one_value_per_epoch_geometric_from_initial_to_final() -> None:
    # 4 epochs of 10 steps: 0.05 * (1e-5 / 0.05) ** (e / 3) for e = 0..3.
    config = OptimConfig(lr=0.05, final_lr=1e-5, lr_sched="exp", warmup_epochs=0)
    got = values(config, 10, 40, [0, 9, 10, 19, 20, 30, 39])
    ratio = (1e-5 / 0.05) ** (1 / 3)  # 0.0584803...
    want = [0.05, 0.05, 0.05 * ratio, 0.05 * ratio, 0.05 * ratio**2, 1e-5, 1e-5]
    assert got == pytest.approx(want, rel=1e-5)
    assert got[2] == pytest.approx(0.0029240, rel=1e-4)


def test_linear_one_value_per_epoch_from_initial_to_final() -> None:
    # keras_imagenet's linear_decay: final + (initial - final) * (E - 1 - e) / (E - 1);
    # 5 epochs of 4 steps from 0.2 to 0.
    config = OptimConfig(lr=0.2, final_lr=0.0, lr_sched="linear", warmup_epochs=0)
    got = values(config, 4, 20, [0, 3, 4, 8, 12, 16, 19])
    assert got == pytest.approx([0.2, 0.2, 0.15, 0.1, 0.05, 0.0, 0.0], abs=1e-7)


def test_cosine_after_linear_warmup() -> None:
    # 1 warmup epoch of 10 steps, then cosine over 100 steps from 0.1 to 0.
    config = OptimConfig(lr=0.1, final_lr=0.0, lr_sched="cosine", warmup_epochs=1)
    got = values(config, 10, 110, [0, 4, 9, 10, 60, 85, 110])
    want = [0.01, 0.05, 0.1, 0.1, 0.05, 0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)), 0.0]
    assert got == pytest.approx(want, abs=1e-7)


def test_constant() -> None:
    constant = OptimConfig(lr=0.3, lr_sched="constant", warmup_epochs=0)
    assert values(constant, 5, 100, [0, 99]) == pytest.approx([0.3, 0.3])


def test_weight_decay_conventions() -> None:
    """seed 000: wd * sum(w^2) / 2 (tf.nn.l2_loss); seed 002: wd * sum(w^2) (Keras l2)."""
    kernels = [tf.constant([[1.0, 2.0]]), tf.constant([3.0])]  # sum of squares 14
    assert float(weight_penalty(kernels, 0.1, "l2_loss")) == pytest.approx(0.7)
    assert float(weight_penalty(kernels, 0.1, "keras")) == pytest.approx(1.4)
    assert flags.parse(["--synthetic"]).optim.weight_decay_convention == "l2_loss"
    seed002 = flags.parse(["--dataset_dir", "/data/tfrecords"])
    assert seed002.optim.weight_decay_convention == "keras"
    help_text = flags.build_parser().format_help()
    assert "wd * sum(w^2) / 2" in help_text and "keras.regularizers.l2" in help_text
