"""Kueue in the tests: the manager started for a module (devcluster's `--with kueue`), a
ClusterQueue with a `pods` quota behind the namespace's LocalQueue, PriorityClasses, and what
the tests read off Kueue's objects. The conftests of tests/operator and tests/e2e import the
fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from devcluster import cluster as devcluster
from tests.operator.harness import Jobs
from tests.operator.jobs import JobBuilder

KUEUE = ("kueue.x-k8s.io", "v1beta2")
GATE = "kueue.x-k8s.io/admission"
FLAVOR = "devcluster-default"
QUEUE = "team"
WITH_KUEUE = ("--set", "gangScheduling.kueue=true")  # the chart's grants for Kueue


# spec.scheduling.gang of a job admitted through Kueue as one pod group from LocalQueue `team`
GANG = {"enabled": True, "provider": "kueue", "queue": QUEUE}


def in_queue(builder: JobBuilder) -> JobBuilder:
    return builder.set("spec.scheduling.gang", dict(GANG))


@pytest.fixture(scope="module")
def kueue(cluster) -> Iterator[None]:
    devcluster.start_kueue(cluster.paths, log=lambda _m: None)
    yield
    devcluster.stop_kueue(cluster.paths)


@pytest.fixture
def quota(kueue, api_client, namespace) -> Iterator[Callable[[int], None]]:
    """quota(n): a ClusterQueue of n pods for this namespace's LocalQueue `team` (preempt:
    a higher-priority workload evicts a lower one)."""
    custom = kube_client.CustomObjectsApi(api_client)
    group, version = KUEUE
    cluster_queue = f"cq-{namespace}"

    def create(pods: int, preempt: bool = False) -> None:
        try:
            custom.create_cluster_custom_object(group, version, "resourceflavors", {
                "apiVersion": f"{group}/{version}", "kind": "ResourceFlavor",
                "metadata": {"name": FLAVOR},
            })  # fmt: skip
        except ApiException as err:
            if err.status != 409:
                raise
        custom.create_cluster_custom_object(group, version, "clusterqueues", {
            "apiVersion": f"{group}/{version}", "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "preemption": {"withinClusterQueue": "LowerPriority" if preempt else "Never"},
                "resourceGroups": [{
                    "coveredResources": ["pods"],
                    "flavors": [{"name": FLAVOR,
                                 "resources": [{"name": "pods", "nominalQuota": pods}]}],
                }],
            },
        })  # fmt: skip
        custom.create_namespaced_custom_object(group, version, namespace, "localqueues", {
            "apiVersion": f"{group}/{version}", "kind": "LocalQueue",
            "metadata": {"name": QUEUE, "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue},
        })  # fmt: skip

    yield create
    custom.delete_cluster_custom_object(group, version, "clusterqueues", cluster_queue)


@pytest.fixture
def priorities(api_client, namespace) -> Iterator[SimpleNamespace]:
    """Two PriorityClasses for this test, low and high."""
    scheduling = kube_client.SchedulingV1Api(api_client)
    names = SimpleNamespace(low=f"low-{namespace}"[:63], high=f"high-{namespace}"[:63])
    for name, value in ((names.low, 100), (names.high, 1000)):
        scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
    yield names
    for name in (names.low, names.high):
        scheduling.delete_priority_class(name)


def gated(pod: kube_client.V1Pod) -> bool:
    return any(g.name == GATE for g in pod.spec.scheduling_gates or [])


def queued(jobs: Jobs, name: str) -> dict | None:
    """The job's Queued condition once it carries Kueue's own reason."""
    found = jobs.condition(name, "Queued")
    ok = found and found["status"] == "True" and "insufficient" in found["message"]
    return found if ok else None
