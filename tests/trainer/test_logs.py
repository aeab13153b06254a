"""The training log line is seed 000's, byte for byte, so parsers of the seed's logs read ours."""

from __future__ import annotations

import pytest

from densenet_trainer.logs import train_line

# Seed 000's README, "Training process": its example log, values and line as printed.
SEED_LINES = [
    (
        (500, 3.0, 148.4, 0.106533, 0.3788784, 0.485411, 0.02792),
        "step:   500  epoch:  3.0  FPS:  148.4  loss:0.106533  reg_loss:0.3788784  "
        "total_loss:0.485411  lr:0.02792",
    ),
    (
        (2000, 12.1, 271.3, 0.120532, 0.3624873, 0.483020, 0.02679),
        "step:  2000  epoch: 12.1  FPS:  271.3  loss:0.120532  reg_loss:0.3624873  "
        "total_loss:0.483020  lr:0.02679",
    ),
    (
        (5000, 30.2, 273.2, 0.106140, 0.3286971, 0.434837, 0.02100),
        "step:  5000  epoch: 30.2  FPS:  273.2  loss:0.106140  reg_loss:0.3286971  "
        "total_loss:0.434837  lr:0.02100",
    ),
]


@pytest.mark.parametrize(("values", "line"), SEED_LINES)
def test_seed_values_give_the_seed_line(values: tuple, line: str) -> None:
    step, epoch, fps, loss, reg, total, lr = values
    got = train_line(step=step, epoch=epoch, fps=fps, loss=loss, reg=reg, total=total, lr=lr)
    assert got == line
