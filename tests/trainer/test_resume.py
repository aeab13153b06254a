"""Restarts: SIGKILL loses at most one checkpoint interval; SIGTERM loses nothing."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from trainer_cli import SMALL, STEP_RE, run, start, wait_for_step

from densenet_trainer.errors import ExitCode

RESUMED_RE = re.compile(r"^resumed from (\S+) at step (\d+)$", re.M)

# Kubernetes' default terminationGracePeriodSeconds: a trainer that takes longer to checkpoint
# and exit on SIGTERM is killed mid-write wherever a pod keeps the default (the operator's pods
# get checkpoint.terminationGracePeriodSeconds, 120 s by default).
K8S_GRACE = 30


def _args(log_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        "--synthetic",
        *SMALL,
        "--max_train_steps",
        str(steps),
        "--display_every",
        "1",
        "--log_dir",
        str(log_dir),
        "--export",
        "false",
        *extra,
    ]


def _resumed_at(stdout: str) -> int:
    match = RESUMED_RE.search(stdout)
    assert match, stdout
    return int(match.group(2))


def _steps(stdout: str) -> list[int]:
    return [int(s) for s in STEP_RE.findall(stdout)]


@pytest.mark.slow
def test_sigkill_then_restart_loses_at_most_one_checkpoint_interval(tmp_path: Path) -> None:
    interval = 3
    out = tmp_path / "first.log"
    proc = start(
        *_args(tmp_path / "run", 200, "--save_checkpoints_steps", str(interval)), output=out
    )
    try:
        killed_after = wait_for_step(out, 7, proc, timeout=240)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    result = run(
        *_args(tmp_path / "run", killed_after + 2, "--save_checkpoints_steps", str(interval)),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    resumed = _resumed_at(result.stdout)
    assert resumed % interval == 0
    assert killed_after - interval <= resumed <= killed_after
    steps = _steps(result.stdout)
    assert steps[0] == resumed + 1 and steps[-1] == killed_after + 2


@pytest.mark.slow
def test_sigterm_exits_75_and_restart_resumes_at_the_same_step(tmp_path: Path) -> None:
    out = tmp_path / "first.log"
    # Checkpoint interval far away: only the SIGTERM handler writes one.
    proc = start(*_args(tmp_path / "run", 200, "--save_checkpoints_steps", "1000"), output=out)
    try:
        wait_for_step(out, 3, proc, timeout=240)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    text = out.read_text()
    assert code == ExitCode.PREEMPTED, text
    assert took < K8S_GRACE, f"SIGTERM to exit took {took:.1f}s; Kubernetes kills after 30s"
    stopped = int(re.search(r"^preempted at step (\d+):", text, re.M).group(1))
    assert stopped == _steps(text)[-1]
    assert (tmp_path / "run" / f"ckpt-{stopped}.index").exists()

    result = run(*_args(tmp_path / "run", stopped + 2), timeout=300)
    assert result.returncode == 0, result.stderr
    assert _resumed_at(result.stdout) == stopped
    assert _steps(result.stdout) == [stopped + 1, stopped + 2]


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_sigterm_during_startup_still_says_preempted(tmp_path: Path) -> None:
    out = tmp_path / "first.log"
    proc = start(*_args(tmp_path / "run", 200), output=out)
    try:
        deadline = time.monotonic() + 60
        while not _catches_sigterm(proc.pid):  # the handler is in place right after parsing
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert code == ExitCode.PREEMPTED, out.read_text()
    assert "preempted (SIGTERM) before training started" in out.read_text()


@pytest.mark.slow
def test_sigterm_during_evaluation_stops_it_and_checkpoints(
    tmp_path: Path, digits_folder_dataset
) -> None:
    """An evaluation of the 360 digits one pair at a time is cut short by SIGTERM: the
    trainer checkpoints the step and exits 75 instead of finishing the pass."""
    data = digits_folder_dataset
    out = tmp_path / "first.log"
    proc = start(
        "--data_dir",
        data.path,
        *SMALL,
        "--batch_size",
        "2",
        "--mode",
        "train_and_evaluate",
        "--epochs_between_evals",
        "0.0028",  # x 719 steps per epoch: every 2 steps
        "--max_train_steps",
        "100",
        "--display_every",
        "1",
        "--save_checkpoints_steps",
        "1000",
        "--export",
        "false",
        "--log_dir",
        str(tmp_path / "run"),
        output=out,
    )
    try:
        deadline = time.monotonic() + 240
        while "evaluating at step 2" not in out.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    text = out.read_text()
    assert code == ExitCode.PREEMPTED, text
    stopped = re.search(r"^evaluation at step 2 stopped after (\d+) images: SIGTERM$", text, re.M)
    assert stopped and int(stopped.group(1)) < data.num_validation, text
    assert "eval: step:" not in text  # no partial figures reported as the result
    assert re.search(r"^preempted at step 2: checkpoint written", text, re.M), text
    assert (tmp_path / "run" / "ckpt-2.index").exists()
    assert took < K8S_GRACE, f"SIGTERM to exit took {took:.1f}s; Kubernetes kills after 30s"
