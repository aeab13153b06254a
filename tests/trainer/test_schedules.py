"""Learning-rate values at chosen steps, computed by hand from the documented formulas."""

from __future__ import annotations

import math

import pytest

from densenet_trainer.config import OptimConfig
from densenet_trainer.schedules import make_schedule


def values(config: OptimConfig, steps_per_epoch: int, total: int, steps: list[int]) -> list:
    schedule = make_schedule(config, steps_per_epoch, total)
    return [float(schedule(s)) for s in steps]


def test_seed002_steps_one_value_per_epoch_from_initial_to_final() -> None:
    # 4 epochs of 10 steps: 0.05 * (1e-5 / 0.05) ** (e / 3) for e = 0..3.
    config = OptimConfig(lr=0.05, final_lr=1e-5, lr_sched="steps", warmup_epochs=0)
    got = values(config, 10, 40, [0, 9, 10, 19, 20, 30, 39])
    ratio = (1e-5 / 0.05) ** (1 / 3)  # 0.0584803...
    want = [0.05, 0.05, 0.05 * ratio, 0.05 * ratio, 0.05 * ratio**2, 1e-5, 1e-5]
    assert got == pytest.approx(want, rel=1e-5)
    assert got[2] == pytest.approx(0.0029240, rel=1e-4)


def test_cosine_after_linear_warmup() -> None:
    # 1 warmup epoch of 10 steps, then cosine over 100 steps from 0.1 to 0.
    config = OptimConfig(lr=0.1, final_lr=0.0, lr_sched="cosine", warmup_epochs=1)
    got = values(config, 10, 110, [0, 4, 9, 10, 60, 85, 110])
    want = [0.01, 0.05, 0.1, 0.1, 0.05, 0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)), 0.0]
    assert got == pytest.approx(want, abs=1e-7)


def test_linear_and_constant() -> None:
    linear = OptimConfig(lr=0.2, final_lr=0.0, lr_sched="linear", warmup_epochs=0)
    assert values(linear, 5, 100, [0, 25, 50, 100]) == pytest.approx([0.2, 0.15, 0.1, 0.0])
    constant = OptimConfig(lr=0.3, lr_sched="constant", warmup_epochs=0)
    assert values(constant, 5, 100, [0, 99]) == pytest.approx([0.3, 0.3])
