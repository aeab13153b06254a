"""Helpers for tests that run real pods on the node runner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from devcluster.config import RUNNER_NODE_LABEL
from devnode.logs import LogsError, find_log
from tests.polling import eventually

HOST_PYTHON_IMAGE = "python:3.11-slim"  # unmatched by the image map: the host's python3


def runner_node(cluster) -> str:
    if cluster.runner_node is None:
        pytest.fail("no node runner on this machine (it needs root)")
    return cluster.runner_node


def python_pod(name: str, script: str, *, image: str = HOST_PYTHON_IMAGE, **spec) -> dict:
    container = {
        "name": "main",
        "image": image,
        "command": ["python3", "-u", "-c", script],
        **spec.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": spec.pop("labels", {})},
        "spec": {
            "nodeSelector": {RUNNER_NODE_LABEL: "true"},
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "containers": [container],
            **spec,
        },
    }


def wait_phase(
    core: kube_client.CoreV1Api, ns: str, name: str, phases: tuple[str, ...], timeout: float = 60
) -> kube_client.V1Pod:
    def probe():
        pod = core.read_namespaced_pod(name, ns)
        return pod if pod.status.phase in phases else None

    return eventually(probe, timeout, what=f"pod {ns}/{name} in {phases}")


def pod_log(
    state_dir: Path, ns: str, name: str, previous: bool = False, container: str = "main"
) -> str:
    try:
        return find_log(state_dir, ns, name, container, previous).read_text()
    except (LogsError, OSError):
        return ""


def wait_log(state_dir: Path, ns: str, name: str, text: str, timeout: float = 60) -> str:
    return eventually(
        lambda: (log := pod_log(state_dir, ns, name)) and text in log and log,
        timeout,
        what=f"{text!r} in the log of {ns}/{name}",
    )


def wait_gone(core: kube_client.CoreV1Api, ns: str, name: str, timeout: float = 30) -> float:
    """Seconds until the pod object is gone."""
    start = time.monotonic()

    def probe() -> bool:
        try:
            core.read_namespaced_pod(name, ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(probe, timeout, what=f"pod {ns}/{name} deleted")
    return time.monotonic() - start


def create(core: kube_client.CoreV1Api, ns: str, pod: dict) -> None:
    """Create a pod, waiting for the namespace's default ServiceAccount that admission needs."""

    def attempt() -> bool:
        try:
            core.create_namespaced_pod(ns, pod)
        except ApiException as exc:
            if exc.status == 403 and "serviceaccount" in str(exc.body).lower():
                return False
            raise
        return True

    eventually(attempt, 30, what=f"creating pod {ns}/{pod['metadata']['name']}")


def pids_with(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (the test's own unique token)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and b"pytest" not in cmdline:
            found.append(int(entry.name))
    return found
