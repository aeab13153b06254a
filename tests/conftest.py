"""Session-wide fixtures: the real local control plane (hack/devcluster) and a fresh namespace
per test.

`cluster` brings the cluster up once per run, reusing one that is already up, and stops it at
the end only if this run started it. Tests that do not ask for it never start anything.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from devcluster import cluster as devcluster
from devcluster.config import ClusterPaths


@dataclass(frozen=True)
class LocalCluster:
    paths: ClusterPaths
    kubeconfig: Path

    def api_client(self) -> kube_client.ApiClient:
        return kube_config.new_client_from_config(config_file=str(self.kubeconfig))


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    paths = ClusterPaths.default()
    was_running = all(healthy for _, _, healthy in devcluster.status(paths))
    if os.geteuid() != 0:
        pytest.fail("the tests need root: the cluster's real node runs containers (run as root)")
    kubeconfig = devcluster.up(paths, log=lambda _m: None)
    yield LocalCluster(paths, kubeconfig)
    if not was_running and os.environ.get("DENSENET_KEEP_CLUSTER") != "1":
        devcluster.down(paths, log=lambda _m: None)


@pytest.fixture(scope="session")
def real_node_session(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The real node, once a module started it (tests/real_node.py), runs on for the next
    module (a start is ~12 s, a stop more) and is stopped at the end of the session. A test
    that stops it (the teardown check, the demo) leaves the next module to start it again."""
    yield cluster
    devcluster.stop_node(cluster.paths)


@pytest.fixture(scope="session")
def api_client(cluster: LocalCluster) -> kube_client.ApiClient:
    return cluster.api_client()


@pytest.fixture(scope="session")
def core_v1(api_client: kube_client.ApiClient) -> kube_client.CoreV1Api:
    return kube_client.CoreV1Api(api_client)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core_v1: kube_client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (deletion is not awaited)."""
    stem = request.node.name.lower().replace("_", "-")
    stem = "".join(ch for ch in stem if ch.isalnum() or ch == "-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace({"metadata": {"name": name, "labels": {"densenet.dev/test": "true"}}})
    yield name
    core_v1.delete_namespace(name, propagation_policy="Background")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a test that did not run: the run fails, whatever CI says."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"{skipped} test(s) skipped: failing the run (a skip is not a pass)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `disruptive` restart the shared cluster, so they run last."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
