"""A NaN/inf loss stops training at once with one line and exit code 4."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from trainer_cli import SMALL, error_lines, run

from densenet_trainer.errors import ExitCode


@pytest.mark.slow
def test_nan_loss_stops_inside_the_host_loop(tmp_path: Path) -> None:
    # lr 1e30 blows the weights up within a step or two; 50 steps per host call and no log
    # line before step 1000 show that the loop itself stops, not the host between loops.
    result = run(
        "--synthetic",
        *SMALL,
        "--lr",
        "1e30",
        "--warmup_epochs",
        "0",
        "--max_train_steps",
        "1000",
        "--iterations_per_loop",
        "50",
        "--display_every",
        "1000",
        "--log_dir",
        str(tmp_path / "run"),
        timeout=300,
    )
    assert result.returncode == ExitCode.DIVERGED, result.stdout + result.stderr
    lines = [line for line in error_lines(result.stderr) if line.startswith("densenet-train")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    step = int(re.search(r"at step (\d+)", lines[0]).group(1))
    assert step < 10, lines[0]
    assert not list((tmp_path / "run").glob("ckpt-*")), "a diverged model must not be saved"
