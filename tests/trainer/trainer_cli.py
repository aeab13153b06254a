"""Run ``python -m densenet_trainer`` as a subprocess and watch its log with deadlines."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.network import TINY_ARGS

STEP_RE = re.compile(r"^step:\s*(\d+)\s", re.M)
# A small, fast configuration: 32x32 images on the tests' network (tests/network.py).
SMALL = [
    "--image_size", "32", "--num_classes", "10", "--batch_size", "4", "--metrics_port", "0",
    *TINY_ARGS,
]  # fmt: skip


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1",
            "TF_ENABLE_ONEDNN_OPTS": "0",
        }
    )
    for name in (
        "TF_CONFIG",
        "DENSENET_TF_CLUSTER_FILE",
        "DENSENET_TF_TASK_TYPE",
        "DENSENET_TF_TASK_INDEX",
    ):
        e.pop(name, None)
    e.update(extra)
    return e


def command(*args: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "densenet_trainer", *args]


def run(
    *args: str,
    timeout: float = 300,
    python: str = sys.executable,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args, python=python),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**(extra_env or {})),
        check=False,
    )


def start(*args: str, output: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(output, "w", encoding="utf-8") as out:
        return subprocess.Popen(
            command(*args), stdout=out, stderr=subprocess.STDOUT, env=env(**(extra_env or {}))
        )


def last_step(text: str) -> int:
    steps = [int(s) for s in STEP_RE.findall(text)]
    return steps[-1] if steps else -1


def wait_for_step(output: Path, step: int, proc: subprocess.Popen, timeout: float) -> int:
    """Poll the process output until a log line reports ``step`` or more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = last_step(output.read_text(encoding="utf-8", errors="replace"))
        if seen >= step:
            return seen
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited {proc.returncode}:\n{output.read_text()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no step >= {step} within {timeout}s:\n{output.read_text()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]
