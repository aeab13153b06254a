"""Jobs under a real Kueue (devcluster's `--with kueue`: the manager built from the pinned
module, its webhooks called by the API server): the operator's pods form one Kueue pod group
that is admitted whole and runs; a second group waits gated while the first holds the quota,
and its job is Queued with Kueue's own reason; a group larger than the quota never starts a
pod. The quota is Kueue's `pods` resource, counted per pod. The operator runs under the
chart's ServiceAccount with gangScheduling.kueue, whose one extra grant the audit log shows
it used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as kube_client

from tests.deploy.test_rbac_audit import audit_events, granted, used
from tests.operator.account import account_name, chart_rbac
from tests.operator.harness import Jobs, OperatorProcess, on_node
from tests.operator.jobs import on_kwok
from tests.operator.kueue_setup import KUEUE, QUEUE, WITH_KUEUE, gated, in_queue, queued
from tests.polling import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("real_node")]


@pytest.fixture
def kueue_operator(cluster, namespace, densenet_crd, tmp_path) -> Iterator[OperatorProcess]:
    """The operator under the chart's ServiceAccount, rendered with gangScheduling.kueue."""
    process = OperatorProcess(cluster, namespace, tmp_path, chart_values=WITH_KUEUE).start()
    yield process
    process.stop()


def kueue_job(name: str, replicas: int) -> dict:
    return in_queue(on_kwok(name, "cpu", 1, replicas=replicas)).build()


def workload_conditions(jobs: Jobs) -> dict[str, dict[str, dict]]:
    """Each Workload's conditions by type, in the jobs' namespace."""
    items = kube_client.CustomObjectsApi(jobs.core.api_client).list_namespaced_custom_object(
        *KUEUE, jobs.namespace, "workloads"
    )["items"]
    return {
        w["metadata"]["name"]: {c["type"]: c for c in (w.get("status") or {}).get("conditions", [])}
        for w in items
    }


def all_running(jobs: Jobs, name: str, count: int) -> bool:
    pods = jobs.pods(name)
    return len(pods) == count and all(p.status.phase == "Running" for p in pods)


def test_a_second_job_is_queued_with_kueues_reason_and_runs_when_the_first_ends(
    jobs, kueue_operator, quota, cluster, fake_dir
):
    quota(2)
    jobs.create(in_queue(on_node("first", fake_dir, FAKE_SLEEP=15)).build())
    eventually(lambda: all_running(jobs, "first", 2), timeout=60, what="first's pods Running")
    for pod in jobs.pods("first"):
        # Kueue's webhook took the group: its label, and the gate it then lifted.
        assert pod.metadata.labels["kueue.x-k8s.io/managed"] == "true"
        assert pod.metadata.labels["kueue.x-k8s.io/pod-group-name"] == "first-0"  # attempt 0
        assert pod.metadata.annotations["kueue.x-k8s.io/pod-group-total-count"] == "2"
        assert not gated(pod)

    jobs.create(kueue_job("second", 2))
    eventually(lambda: len(jobs.pods("second")) == 2, timeout=30, what="second's pods")

    def second_pending() -> dict | None:
        reserved = workload_conditions(jobs).get("second-0", {}).get("QuotaReserved")
        return reserved if reserved and reserved["status"] == "False" else None

    reserved = eventually(second_pending, timeout=30, what="second's Workload pending")
    assert "insufficient unused quota for pods" in reserved["message"], reserved
    assert all(gated(p) and not p.spec.node_name for p in jobs.pods("second"))

    # The job says it is queued, where, and Kueue's own reason, not that its pods are stuck.
    condition = eventually(
        lambda: queued(jobs, "second"), timeout=30, what=f"second Queued {jobs.status('second')}"
    )
    assert jobs.status("second")["phase"] == "Queued"
    assert condition["message"] == (
        f"waiting for Kueue to admit all 2 pods (LocalQueue {QUEUE}): {reserved['message']}"
    )
    assert not [c for c in jobs.status("second")["conditions"] if c["type"] == "PodsNotStarting"]
    assert jobs.status("first")["phase"] == "Running"

    # The first ends (its workers exit 0): Kueue finishes its group and admits the second.
    jobs.wait_phase("first", "Succeeded", timeout=60)
    eventually(lambda: all_running(jobs, "second", 2), timeout=60, what="second's pods Running")
    jobs.wait_phase("second", "Running")
    admitted = jobs.condition("second", "Queued")
    assert (admitted["status"], admitted["reason"]) == ("False", "Admitted"), admitted

    # Deleted mid-run, the second ends its group: the quota goes to a third at once.
    jobs.create(kueue_job("third", 2))
    eventually(lambda: queued(jobs, "third"), timeout=30, what="third Queued")
    jobs.delete("second")
    eventually(lambda: all_running(jobs, "third", 2), timeout=60, what="third's pods Running")
    eventually(lambda: not jobs.pods("second"), timeout=60, what="second's pods gone")

    # The grants gangScheduling.kueue adds are ones the operator used (the audit log).
    namespace = jobs.namespace
    user = f"system:serviceaccount:{namespace}:{account_name(chart_rbac(namespace))}"
    extra = granted(namespace, *WITH_KUEUE) - granted(namespace)
    assert extra == {("kueue.x-k8s.io", "workloads", "get"), ("", "pods", "patch")}
    assert extra <= used(audit_events(cluster.paths.audit_log, user))


def test_a_preempted_job_waits_gated_then_runs_again_without_a_counted_restart(
    jobs, kueue_operator, quota, priorities, fake_dir
):
    """A high-priority job takes the quota: Kueue evicts the low one's group, its workers
    get SIGTERM and exit 75 (a trainer's checkpoint-and-stop), the operator counts a
    preemption, not a restart, and says Kueue's words; the next attempt's pods wait gated
    until the high job ends, then run."""
    quota(2, preempt=True)
    low = in_queue(on_node("low", fake_dir, FAKE_SLEEP=600))
    jobs.create(low.set("spec.scheduling.priorityClassName", priorities.low).build())
    jobs.wait_phase("low", "Running", timeout=60)

    high = in_queue(on_node("high", fake_dir, FAKE_SLEEP=5))
    jobs.create(high.set("spec.scheduling.priorityClassName", priorities.high).build())
    eventually(lambda: queued(jobs, "low"), timeout=60, what="low Queued after its eviction")
    status = jobs.status("low")
    assert (status["restarts"], status["preemptions"], status["attempt"]) == (0, 1, 1), status
    restarting = jobs.condition("low", "Restarting")["message"]
    assert "was stopped by Kueue (WorkloadEvictedDueToPreempted: Preempted to accommodate" in (
        restarting
    ), restarting
    events = jobs.core.list_namespaced_event(jobs.namespace).items
    assert any("was stopped by Kueue" in (e.message or "") for e in events if e.type == "Warning")
    assert all(gated(p) for p in jobs.pods("low"))

    # The high job ends; Kueue admits the low job's new group and its workers run again.
    jobs.wait_phase("high", "Succeeded", timeout=60)
    eventually(lambda: all_running(jobs, "low", 2), timeout=60, what="low's workers running")
    status = jobs.wait_phase("low", "Running")
    assert (status["restarts"], status["preemptions"]) == (0, 1), status
    assert (jobs.condition("low", "Queued") or {})["status"] == "False"


def test_a_group_larger_than_the_quota_never_starts_a_pod(jobs, kueue_operator, quota):
    quota(2)
    jobs.create(kueue_job("wide", 3))

    def pending() -> dict | None:
        found = workload_conditions(jobs).get("wide-0", {})
        reserved = found.get("QuotaReserved")
        return reserved if reserved and reserved["status"] == "False" else None

    reserved = eventually(pending, timeout=30, what="the Workload's pending condition")
    pods = jobs.pods("wide")
    assert len(pods) == 3, pods
    assert all(gated(p) and not p.spec.node_name for p in pods), pods
    assert "pods" in reserved["message"], reserved
    condition = eventually(lambda: queued(jobs, "wide"), timeout=30, what="wide Queued")
    assert condition["message"].endswith(reserved["message"]), condition  # Kueue's words
    assert all(gated(p) and not p.spec.node_name for p in jobs.pods("wide"))
