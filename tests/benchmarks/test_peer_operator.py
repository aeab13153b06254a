"""The peer benchmark's smoke (never a timed test): on the local control plane, Kubeflow's
training-operator, built from its pinned module, and ours each bring 2 jobs of 4 workers to all
pods Running on kwok nodes, and the script prints figures for both."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[2]


def test_both_controllers_run_their_jobs_and_the_figures_are_printed(cluster) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "peer_operator.py"),
         "--jobs", "2", "--runs", "1", "--timeout", "120", "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # every job of both sides had all pods Running
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for side in ("ours", "theirs"):
        (run,) = figures["runs"][side]
        assert all(math.isfinite(v) and v >= 0 for v in run.values()), (side, run)
        assert run["running p99"] >= run["exist p99"] > 0 and run["RSS MB"] > 0, (side, run)
    assert "ours/theirs" in result.stdout
