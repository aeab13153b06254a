"""Data problems reach the operator as exit code 3 with one line naming the flag."""

from __future__ import annotations

from pathlib import Path

from trainer_cli import SMALL, error_lines, run

from densenet_trainer.errors import ExitCode


def test_missing_data_dir_is_bad_data(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dataset"
    result = run(
        "--data_dir", str(missing), *SMALL, "--log_dir", str(tmp_path / "run"), timeout=120
    )
    assert result.returncode == ExitCode.BAD_DATA, result.stdout + result.stderr
    lines = [line for line in error_lines(result.stderr) if line.startswith("densenet-train")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "--data_dir" in lines[0] and str(missing) in lines[0]
