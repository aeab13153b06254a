"""The chart's admin policy on the real API server: every hostile job of the corpus is refused
by `kubectl apply --dry-run=server` naming its field, and allowed once the admin's value or
namespace label allows it; a job admitted before the policy ends Failed (PolicyViolation)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from densenet_operator import schema
from tests.deploy.test_admission_policy import HOSTILE
from tests.deploy.tools import by_kind, render
from tests.operator.account import fullname
from tests.operator.jobs import on_kwok
from tests.polling import eventually

pytestmark = pytest.mark.cluster


class Policy:
    """The chart's ValidatingAdmissionPolicy and binding, bound to one namespace."""

    def __init__(self, api_client: kube_client.ApiClient, namespace: str) -> None:
        self.admission = kube_client.AdmissionregistrationV1Api(api_client)
        self.namespace = namespace
        self.name = fullname(namespace)

    def objects(self, *values: str) -> list[dict[str, Any]]:
        selector = {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}}
        objects = render(
            "--set", f"fullnameOverride={self.name}",
            "--set-json", f"policy.namespaceSelector={json.dumps(selector)}",
            "--show-only", "templates/admission-policy.yaml", *values,
        )  # fmt: skip
        return by_kind(objects, "ValidatingAdmissionPolicy") + by_kind(
            objects, "ValidatingAdmissionPolicyBinding"
        )

    def install(self, *values: str) -> None:
        policy, binding = self.objects(*values)
        self.delete()
        self.admission.create_validating_admission_policy(policy)
        self.admission.create_validating_admission_policy_binding(binding)

    def delete(self) -> None:
        for remove in (
            self.admission.delete_validating_admission_policy_binding,
            self.admission.delete_validating_admission_policy,
        ):
            try:
                remove(self.name)
            except ApiException as err:
                if err.status != 404:
                    raise


def dry_run(custom: kube_client.CustomObjectsApi, namespace: str, job: dict[str, Any]) -> str:
    """'' when the server would admit `job`, else its message."""
    body = {**job, "metadata": {**job["metadata"], "name": f"probe-{uuid.uuid4().hex[:6]}"}}
    try:
        custom.create_namespaced_custom_object(
            schema.GROUP, schema.VERSION, namespace, schema.PLURAL, body, dry_run="All"
        )
    except ApiException as err:
        return json.loads(err.body).get("message", "")
    return ""


@pytest.fixture
def policy(api_client, namespace, densenet_crd) -> Iterator[Policy]:
    installed = Policy(api_client, namespace)
    yield installed
    installed.delete()


def wait_enforced(custom, namespace: str, job: dict[str, Any], field: str) -> str:
    return eventually(
        lambda: (m := dry_run(custom, namespace, job)) and field in m and m,
        timeout=30,
        what="the policy to be enforced",
    )


@pytest.mark.parametrize(("builder", "field", "allow", "labels"),
                         [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])  # fmt: skip
def test_the_server_refuses_a_hostile_job_and_the_admin_can_allow_it(
    *, api_client, namespace, policy, builder, field, allow, labels
):
    custom = kube_client.CustomObjectsApi(api_client)
    job = builder.build()
    policy.install()
    message = wait_enforced(custom, namespace, job, field)
    assert f"denied request: {field}" in message, message
    if allow:
        policy.install("--set", allow)
        eventually(lambda: dry_run(custom, namespace, job) == "", timeout=30, what="allowed")
    if labels:
        core = kube_client.CoreV1Api(api_client)
        patch = {"metadata": {"labels": labels["metadata"]["labels"]}}
        core.patch_namespace(namespace, patch)
        eventually(lambda: dry_run(custom, namespace, job) == "", timeout=30, what="allowed")


def test_a_job_admitted_before_the_policy_ends_failed(
    jobs, operator, api_client, namespace, policy
):
    operator()
    job = on_kwok("early", "cpu", 1, replicas=1)
    job.set("spec.scheduling.priorityClassName", "system-cluster-critical")
    jobs.create(job.build())
    jobs.wait_phase("early", "Running")
    policy.install()
    # The harness's operator reuses the policy it read for 1 s (--cache-seconds; default 60).
    status = jobs.wait_phase("early", "Failed", timeout=60)
    failed = jobs.condition("early", "Failed")
    assert failed["reason"] == "PolicyViolation"
    assert failed["message"].startswith(
        "spec.scheduling.priorityClassName: system-cluster-critical"
    )
    assert status["replicas"]["active"] == 0 or eventually(lambda: not jobs.pods("early"))
