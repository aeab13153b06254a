"""The operator under API faults on the real API server: quotas, refused writes, objects that
are not its own, pods that will not go. Each test reproduced a wrong state before its fix."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from tests.operator.harness import Jobs, fake_trainer, real_node_job
from tests.operator.jobs import JobBuilder, on_kwok
from tests.polling import eventually

pytestmark = pytest.mark.cluster

# Creation retries stay quick however long a test keeps them refused.
SHORT_BACKOFF = ("--backoff-max", "2")


def condition_true(jobs: Jobs, name: str, kind: str) -> dict | None:
    found = jobs.condition(name, kind)
    return found if found and found["status"] == "True" else None


def uids(jobs: Jobs, name: str) -> dict[str, str]:
    return {p.metadata.name: p.metadata.uid for p in jobs.pods(name)}


@contextlib.contextmanager
def denied(
    api_client: kube_client.ApiClient,
    namespace: str,
    resource: tuple[str, str],
    operation: str,
    ready: contextlib.AbstractContextManager | None = None,
) -> Iterator[None]:
    """A ValidatingAdmissionPolicy that refuses ``operation`` on ``resource`` (group,
    resource[/subresource]) in ``namespace`` until the block ends: the API server itself
    refusing a write, as a webhook, a quota or an outage would."""
    admission = kube_client.AdmissionregistrationV1Api(api_client)
    name = f"deny-{uuid.uuid4().hex[:8]}"
    group, plural = resource
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [group],
                            "apiVersions": ["*"],
                            "resources": [plural],
                            "operations": [operation],
                        }
                    ]
                },
                "validations": [{"expression": "false", "message": f"test {name} refuses it"}],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        }
    )
    try:
        yield
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def wait_denied(probe) -> None:
    """Until the API server enforces a new policy (its informer syncs within seconds)."""

    def refused() -> bool:
        try:
            probe()
        except ApiException as err:
            return err.status in (403, 422)
        return False

    eventually(refused, timeout=30, interval=0.2, what="the policy to be enforced")


def test_a_quota_short_of_the_job_backs_off_without_churning_pods(jobs, operator):
    """ResourceQuota of 3 pods against replicas 4: 3 pods stay, the job says which quota
    refused what, nothing counts as a restart or preemption; more quota and it runs."""
    quota = {"metadata": {"name": "three-pods"}, "spec": {"hard": {"pods": "3"}}}
    jobs.core.create_namespaced_resource_quota(jobs.namespace, quota)
    eventually(
        lambda: jobs.core.read_namespaced_resource_quota("three-pods", jobs.namespace).status.hard,
        what="the quota to be counted",
    )
    operator(*SHORT_BACKOFF)
    jobs.create(on_kwok("quota", "cpu", 1, replicas=4).build())
    refused = eventually(
        lambda: condition_true(jobs, "quota", "ReplicaFailure"), what="ReplicaFailure"
    )
    assert refused["reason"] == "FailedCreate"
    assert "exceeded quota: three-pods" in refused["message"]
    assert "pods=3" in refused["message"]
    first = uids(jobs, "quota")
    assert len(first) == 3
    eventually(lambda: jobs.status("quota").get("createFailures", 0) >= 2, what="a retry")
    status = jobs.status("quota")
    assert uids(jobs, "quota") == first  # the 3 pods were never deleted and recreated
    assert (status["attempt"], status["restarts"], status["preemptions"]) == (0, 0, 0)
    assert "launchedAttempt" not in status
    jobs.core.patch_namespaced_resource_quota(
        "three-pods", jobs.namespace, {"spec": {"hard": {"pods": "4"}}}
    )
    status = jobs.wait_phase("quota", "Running", timeout=60)
    assert (status["attempt"], status["restarts"], status["preemptions"]) == (0, 0, 0)
    assert status["launchedAttempt"] == 0 and "createFailures" not in status
    assert jobs.condition("quota", "ReplicaFailure")["status"] == "False"


def test_pods_orphaned_by_a_deleted_job_are_not_taken_by_a_new_one(jobs, operator):
    """`kubectl delete --cascade=orphan` then apply again: the old pods are not the new job's,
    so it neither counts them nor deletes them; it says which object is in its way."""
    operator(*SHORT_BACKOFF)
    jobs.create(on_kwok("again", "cpu", 1, replicas=2).build())
    jobs.wait_phase("again", "Running")
    old = uids(jobs, "again")
    jobs.custom.delete_namespaced_custom_object(
        "densenet.dev", "v1alpha1", jobs.namespace, "densenettrainingjobs", "again",
        propagation_policy="Orphan",
    )  # fmt: skip
    eventually(lambda: all(not p.metadata.owner_references for p in jobs.pods("again")),
               what="the garbage collector to orphan the pods")  # fmt: skip
    eventually(lambda: jobs.gone("again"), what="the old job deleted")
    jobs.create(on_kwok("again", "cpu", 1, replicas=2).build())
    refused = eventually(
        lambda: condition_true(jobs, "again", "ReplicaFailure"), what="ReplicaFailure"
    )
    assert "again" in refused["message"]
    assert "already exists and is not owned by this job" in refused["message"]
    status = jobs.status("again")
    assert status["phase"] == "Pending"
    assert status["replicas"]["active"] == 0
    assert uids(jobs, "again") == old
    for name in old:
        jobs.core.delete_namespaced_pod(name, jobs.namespace, grace_period_seconds=0)
    selector = "densenet.dev/job-name=again"
    jobs.core.delete_collection_namespaced_service(jobs.namespace, label_selector=selector)
    jobs.core.delete_collection_namespaced_config_map(jobs.namespace, label_selector=selector)
    networking = kube_client.NetworkingV1Api(jobs.core.api_client)
    networking.delete_collection_namespaced_network_policy(jobs.namespace, label_selector=selector)
    status = jobs.wait_phase("again", "Running", timeout=60)
    assert set(uids(jobs, "again").values()).isdisjoint(old.values())


def test_a_foreign_service_with_the_jobs_name_is_reported_never_adopted(jobs, operator):
    service = {
        "metadata": {"name": "taken"},
        "spec": {"clusterIP": "None", "selector": {"app": "someone-else"}},
    }
    jobs.core.create_namespaced_service(jobs.namespace, service)
    operator()
    jobs.create(on_kwok("taken", "cpu", 1, replicas=1).build())
    refused = eventually(
        lambda: condition_true(jobs, "taken", "ReplicaFailure"), what="ReplicaFailure"
    )
    assert "Service taken already exists and is not owned by this job" in refused["message"]
    found = jobs.core.read_namespaced_service("taken", jobs.namespace)
    assert not found.metadata.owner_references
    assert found.spec.selector == {"app": "someone-else"}
    assert jobs.pods("taken") == []


def test_a_deleted_rank_table_configmap_is_written_again(jobs, operator):
    operator()
    job = on_kwok("tablecm", "ascend", 1, replicas=2)
    jobs.create(job.set("spec.ascend.source", "devicePlugin").build())
    jobs.wait_phase("tablecm", "Initializing")  # kwok pods carry no device annotation
    jobs.core.delete_namespaced_config_map("rings-config-tablecm", jobs.namespace)
    jobs.core.delete_namespaced_pod("tablecm-worker-0", jobs.namespace, grace_period_seconds=0)
    eventually(lambda: jobs.status("tablecm").get("attempt") == 1, what="a new attempt")
    table = eventually(
        lambda: (
            jobs.core.list_namespaced_config_map(
                jobs.namespace, field_selector="metadata.name=rings-config-tablecm"
            ).items
        ),
        what="the rank table written again",
    )
    assert json.loads(table[0].data["hccl.json"]) == {"status": "initializing"}
    jobs.wait_phase("tablecm", "Initializing", timeout=60)


@pytest.mark.usefixtures("real_node")
def test_a_restart_is_recorded_before_the_old_pods_are_deleted(
    jobs, operator, api_client, fake_dir
):
    """The API refuses pod deletions: the restart the crash caused is in the status all the
    same (attempt and restarts written first), so a crash of the operator or a failed delete
    cannot lose it; once deletions work, the job goes on from there."""
    probe = jobs.core.create_namespaced_pod(
        jobs.namespace,
        {
            "metadata": {"name": "probe"},
            "spec": {
                "containers": [{"name": "c", "image": "x"}],
                "nodeSelector": {"densenet.dev/no-such-node": "true"},  # never runs
            },
        },
    )
    with denied(api_client, jobs.namespace, ("", "pods"), "DELETE"):
        wait_denied(lambda: jobs.core.delete_namespaced_pod(probe.metadata.name, jobs.namespace,
                                                             dry_run="All"))  # fmt: skip
        operator()
        template = fake_trainer(fake_dir, FAKE_EXIT=1, FAKE_ONCE=1, FAKE_SLEEP=1)
        job = real_node_job(JobBuilder("order").replicas(2))
        jobs.create(job.set("spec.template", template).build())
        status = eventually(
            lambda: (s := jobs.status("order")).get("restarts") == 1 and s, timeout=60,
            what="the restart recorded while deletions are refused",
        )  # fmt: skip
        assert status["attempt"] == 1 and status["phase"] == "Restarting"
        assert {p.metadata.labels["densenet.dev/attempt"] for p in jobs.pods("order")} == {"0"}
    status = jobs.wait_phase("order", "Succeeded", timeout=120)
    assert (status["attempt"], status["restarts"], status["preemptions"]) == (1, 1, 0)


def test_a_job_whose_first_reconcile_fails_is_tried_again(jobs, operator, api_client):
    """The API refuses the job's status writes when it is new: once they work again, the
    job is picked up without any new event."""
    jobs.create(on_kwok("probe", "cpu", 1, replicas=1).set("spec.runPolicy.suspend", True).build())
    resource = ("densenet.dev", "densenettrainingjobs/status")
    with denied(api_client, jobs.namespace, resource, "UPDATE"):
        wait_denied(lambda: jobs.custom.patch_namespaced_custom_object_status(
            "densenet.dev", "v1alpha1", jobs.namespace, "densenettrainingjobs", "probe",
            {"status": {"phase": "Pending"}}, dry_run="All"))  # fmt: skip
        op = operator()
        jobs.create(on_kwok("late", "cpu", 1, replicas=1).build())
        eventually(
            lambda: op.sample("densenet_operator_reconcile_errors_total") >= 1,
            what="the first reconcile to fail",
        )
        assert jobs.pods("late") == []  # the status (intent) is written before any pod
        assert "phase" not in jobs.status("late")
    jobs.wait_phase("late", "Running", timeout=60)


def test_a_pod_held_by_a_finalizer_is_reported_not_force_deleted(jobs, operator):
    """Suspend a job whose pod a finalizer holds, on a healthy node: the job says which pod
    and finalizer it waits for; the pod's deletion event brings it on once released."""
    operator()
    job = on_kwok("held", "cpu", 1, replicas=2)
    jobs.create(job.set("spec.checkpoint.terminationGracePeriodSeconds", 1).build())
    jobs.wait_phase("held", "Running")
    hold = {"metadata": {"finalizers": ["test.densenet.dev/hold"]}}
    jobs.core.patch_namespaced_pod("held-worker-0", jobs.namespace, hold)
    jobs.patch("held", {"spec": {"runPolicy": {"suspend": True}}})
    waiting = eventually(
        lambda: condition_true(jobs, "held", "PodsNotTerminating"), timeout=60,
        what="PodsNotTerminating",
    )  # fmt: skip
    assert "held-worker-0" in waiting["message"]
    assert "held by finalizers test.densenet.dev/hold" in waiting["message"]
    assert jobs.core.read_namespaced_pod("held-worker-0", jobs.namespace).metadata.finalizers
    jobs.core.patch_namespaced_pod(
        "held-worker-0", jobs.namespace, {"metadata": {"finalizers": None}}
    )
    eventually(lambda: not jobs.pods("held"), what="the pod gone")
    eventually(lambda: jobs.condition("held", "PodsNotTerminating")["status"] == "False",
               what="the condition cleared")  # fmt: skip
