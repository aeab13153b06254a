"""Jobs under a real Kueue (devcluster's `--with kueue`: the manager built from the pinned
module, its webhooks called by the API server): the operator's pods form one Kueue pod group
that is admitted whole and runs; a second group waits gated, with Kueue's reason, while the
first holds the quota; and a group larger than the quota never starts a pod. The quota is
Kueue's `pods` resource, counted per pod."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from devcluster import cluster as devcluster
from tests.operator.harness import Jobs
from tests.operator.jobs import on_kwok
from tests.polling import eventually

pytestmark = [pytest.mark.cluster]

KUEUE = ("kueue.x-k8s.io", "v1beta2")
GATE = "kueue.x-k8s.io/admission"
FLAVOR = "devcluster-default"
QUEUE = "team"


@pytest.fixture(scope="module")
def kueue(cluster) -> Iterator[None]:
    devcluster.start_kueue(cluster.paths, log=lambda _m: None)
    yield
    devcluster.stop_kueue(cluster.paths)


@pytest.fixture
def quota(kueue, api_client, namespace) -> Iterator[Callable[[int], None]]:
    """quota(n): a ClusterQueue of n pods for this namespace's LocalQueue `team`."""
    custom = kube_client.CustomObjectsApi(api_client)
    group, version = KUEUE
    cluster_queue = f"cq-{namespace}"

    def create(pods: int) -> None:
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


def kueue_job(name: str, replicas: int) -> dict:
    return (
        on_kwok(name, "cpu", 1, replicas=replicas)
        .set("spec.scheduling.gang", {"enabled": True, "provider": "kueue", "queue": QUEUE})
        .build()
    )


def gated(pod: kube_client.V1Pod) -> bool:
    return any(g.name == GATE for g in pod.spec.scheduling_gates or [])


def workload_conditions(api_client, namespace: str) -> dict[str, dict[str, dict]]:
    """Each Workload's conditions by type."""
    items = kube_client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        *KUEUE, namespace, "workloads"
    )["items"]
    return {
        w["metadata"]["name"]: {c["type"]: c for c in (w.get("status") or {}).get("conditions", [])}
        for w in items
    }


def all_running(jobs: Jobs, name: str, count: int) -> bool:
    pods = jobs.pods(name)
    return len(pods) == count and all(p.status.phase == "Running" for p in pods)


def test_a_second_group_waits_gated_while_the_first_holds_the_quota(
    jobs, operator, quota, api_client, namespace
):
    quota(2)
    operator()
    jobs.create(kueue_job("first", 2))
    eventually(lambda: all_running(jobs, "first", 2), timeout=60, what="first's pods Running")
    for pod in jobs.pods("first"):
        # Kueue's webhook took the group: its label, and the gate it then lifted.
        assert pod.metadata.labels["kueue.x-k8s.io/managed"] == "true"
        assert pod.metadata.labels["kueue.x-k8s.io/pod-group-name"] == "first"
        assert pod.metadata.annotations["kueue.x-k8s.io/pod-group-total-count"] == "2"
        assert not gated(pod)

    jobs.create(kueue_job("second", 2))
    eventually(lambda: len(jobs.pods("second")) == 2, timeout=30, what="second's pods")

    def second_pending() -> dict | None:
        found = workload_conditions(api_client, namespace).get("second", {})
        reserved = found.get("QuotaReserved")
        return reserved if reserved and reserved["status"] == "False" else None

    reserved = eventually(second_pending, timeout=30, what="second's Workload pending")
    assert "insufficient unused quota for pods" in reserved["message"], reserved
    pods = jobs.pods("second")
    assert all(gated(p) and not p.spec.node_name for p in pods), pods
    assert all_running(jobs, "first", 2)  # the admitted group is not disturbed


def test_a_group_larger_than_the_quota_never_starts_a_pod(
    jobs, operator, quota, api_client, namespace
):
    quota(2)
    operator()
    jobs.create(kueue_job("wide", 3))

    def pending() -> dict | None:
        found = workload_conditions(api_client, namespace).get("wide", {})
        reserved = found.get("QuotaReserved")
        return reserved if reserved and reserved["status"] == "False" else None

    reserved = eventually(pending, timeout=30, what="the Workload's pending condition")
    pods = jobs.pods("wide")
    assert len(pods) == 3, pods
    assert all(gated(p) and not p.spec.node_name for p in pods), pods
    assert "pods" in reserved["message"], reserved
