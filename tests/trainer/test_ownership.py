"""A --log_dir belongs to one job: the marker file, and two jobs on one directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from trainer_cli import SMALL, error_lines, run

from densenet_trainer import env, ownership
from densenet_trainer.errors import ExitCode, UserError

A, B = "team-a/digits", "team-b/digits"


def _marker(log_dir: Path) -> dict:
    return json.loads((log_dir / ownership.MARKER).read_text())


def test_the_chief_claims_a_new_directory(tmp_path: Path) -> None:
    log_dir = tmp_path / "ckpt" / "job"
    ownership.claim(str(log_dir), A, is_chief=True)
    marker = _marker(log_dir)
    assert marker["identity"] == A
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", marker["created"])
    assert sorted(p.name for p in log_dir.iterdir()) == [ownership.MARKER]  # no scratch left
    ownership.claim(str(log_dir), A, is_chief=True)  # a restart: the same job
    ownership.claim(str(log_dir), A, is_chief=False)
    assert _marker(log_dir) == marker


@pytest.mark.parametrize("is_chief", [True, False], ids=["chief", "worker"])
def test_another_jobs_directory_is_refused_naming_both(tmp_path: Path, is_chief: bool) -> None:
    ownership.claim(str(tmp_path), A, is_chief=True)
    with pytest.raises(UserError) as raised:
        ownership.claim(str(tmp_path), B, is_chief=is_chief)
    assert raised.value.exit_code == ExitCode.USAGE
    assert str(raised.value) == (
        f"checkpoint directory {tmp_path} belongs to job {A}, not {B}: give this job its own "
        "checkpoint.path (or subdirectory)"
    )
    assert _marker(tmp_path)["identity"] == A  # never replaced


def test_a_worker_only_reads(tmp_path: Path) -> None:
    """A worker ahead of its chief finds no marker: it goes on and writes none (the chief's
    write is the only one, so the two never race)."""
    log_dir = tmp_path / "job"
    log_dir.mkdir()
    ownership.claim(str(log_dir), A, is_chief=False)
    assert list(log_dir.iterdir()) == []


def test_without_an_identity_nothing_is_written_or_checked(tmp_path: Path) -> None:
    ownership.claim(str(tmp_path), A, is_chief=True)
    ownership.claim(str(tmp_path), None, is_chief=True)  # plain CLI use in a claimed directory
    empty = tmp_path / "plain"
    ownership.claim(str(empty), None, is_chief=True)
    assert not empty.exists()
    assert env.job_identity({}) is None
    assert env.job_identity({env.JOB_IDENTITY: " "}) is None
    assert env.job_identity({env.JOB_IDENTITY: A}) == A


def test_an_unreadable_marker_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ownership.MARKER).write_text("{not json")
    with pytest.raises(UserError, match=r"^checkpoint directory .*: its job marker "):
        ownership.claim(str(tmp_path), A, is_chief=False)


def _args(log_dir: Path, steps: int) -> list[str]:
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
    ]


@pytest.mark.slow
def test_two_jobs_on_one_checkpoint_directory(tmp_path: Path) -> None:
    """Job B given job A's directory stops at start (exit 2, one line naming both) and leaves
    it as it was; job A restarted there resumes."""
    log_dir = tmp_path / "ckpt"
    first = run(*_args(log_dir, 2), extra_env={env.JOB_IDENTITY: A})
    assert first.returncode == 0, first.stdout + first.stderr
    assert _marker(log_dir)["identity"] == A
    before = {p.name: p.stat().st_mtime_ns for p in log_dir.rglob("*")}

    other = run(*_args(log_dir, 4), extra_env={env.JOB_IDENTITY: B})
    assert other.returncode == ExitCode.USAGE, other.stdout + other.stderr
    assert error_lines(other.stderr) == [
        f"densenet-train: error: checkpoint directory {log_dir} belongs to job {A}, not {B}: "
        "give this job its own checkpoint.path (or subdirectory)"
    ]
    assert "step:" not in other.stdout
    assert {p.name: p.stat().st_mtime_ns for p in log_dir.rglob("*")} == before

    again = run(*_args(log_dir, 3), extra_env={env.JOB_IDENTITY: A})
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"^resumed from \S*ckpt-2 at step 2$", again.stdout, re.M), again.stdout
