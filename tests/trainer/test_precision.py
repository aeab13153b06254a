"""bf16, fp16 (dynamic loss scaling), --xla and benchmark mode each run a few steps on CPU."""

from __future__ import annotations

import math
import re
import signal
from pathlib import Path

import pytest
from trainer_cli import SMALL, run, start, wait_for_step

from densenet_trainer.errors import ExitCode

LOSSES_RE = re.compile(r"^step:\s*(\d+) .* total_loss:(\S+) ", re.M)


def _finite_steps(text: str) -> list[int]:
    found = LOSSES_RE.findall(text)
    assert found and all(math.isfinite(float(total)) for _, total in found), text
    return [int(step) for step, _ in found]


@pytest.mark.slow
def test_benchmark_mode_in_bf16_with_xla(tmp_path: Path) -> None:
    result = run(
        "--mode",
        "benchmark",
        *SMALL,
        "--bfloat16",
        "--xla",
        "--max_train_steps",
        "3",
        "--iterations_per_loop",
        "1",
        "--display_every",
        "1",
        "--log_dir",
        str(tmp_path / "run"),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _finite_steps(result.stdout) == [1, 2, 3]
    assert re.search(
        r"^benchmark: images/sec: [0-9.]+ \(global batch 4, 1 replica\(s\), cpu, bf16\)$",
        result.stdout,
        re.M,
    ), result.stdout
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("ckpt-*"))


@pytest.mark.slow
def test_fp16_trains_and_sigterm_without_checkpoints_says_so(tmp_path: Path) -> None:
    """fp16 with loss scaling trains (finite losses); with --do_checkpoint false a SIGTERM
    still exits 75 but the log says no checkpoint was written, because none was."""
    out = tmp_path / "out.log"
    log_dir = tmp_path / "run"
    proc = start(
        "--synthetic",
        *SMALL,
        "--fp16",
        "--do_checkpoint",
        "false",
        "--export",
        "false",
        "--max_train_steps",
        "200",
        "--display_every",
        "1",
        "--log_dir",
        str(log_dir),
        output=out,
    )
    try:
        wait_for_step(out, 2, proc, timeout=240)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    text = out.read_text()
    assert code == ExitCode.PREEMPTED, text
    steps = _finite_steps(text)
    assert re.search(
        rf"^preempted at step {steps[-1]}: no checkpoint written \(--do_checkpoint false\), "
        "exiting with 75",
        text,
        re.M,
    ), text
    assert not list(log_dir.glob("ckpt-*"))
