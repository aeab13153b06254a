"""The chart's admin policy (a ValidatingAdmissionPolicy) evaluated offline by the operator's
admission.py, as the operator evaluates it: every hostile job is refused naming its field, and
allowed once the admin's value or namespace label allows it. Against the real API server with
the chart installed: tests/deploy/test_admission_cluster.py (next)."""

from __future__ import annotations

from typing import Any

import pytest

from densenet_operator import admission, schema
from tests.deploy.tools import one, render
from tests.operator.jobs import EXAMPLES, JobBuilder, load

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
PRIVILEGED = {
    **NAMESPACE,
    "metadata": {"name": "team-a", "labels": {"densenet.dev/allow-privileged": "true"}},
}


def policy(*values: str) -> dict[str, Any]:
    return one(render(*values), "ValidatingAdmissionPolicy")


@pytest.fixture(scope="module")
def default_policy() -> dict[str, Any]:
    return policy()


def job(builder: JobBuilder) -> dict[str, Any]:
    obj = schema.apply(builder.build())
    obj["metadata"]["namespace"] = "team-a"
    return obj


def vol(name: str, source: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **source}


HOST_ROOT = {"hostPath": {"path": "/"}}
NFS = {"nfs": {"server": "10.0.0.1", "path": "/"}}


def host(path: str) -> dict[str, Any]:
    return {"hostPath": {"path": path}}


def volumes(*named: tuple[str, dict[str, Any]]) -> JobBuilder:
    return JobBuilder().set("spec.template.volumes", [vol(n, source) for n, source in named])


def dataset(volume: dict[str, Any]) -> JobBuilder:
    return JobBuilder().set(
        "spec.dataset", {"format": "tfrecord", "path": "/data", "volume": volume}
    )


def checkpoint(volume: dict[str, Any]) -> JobBuilder:
    return JobBuilder().set("spec.checkpoint.volume", volume)


GAUDI_HOST = (
    JobBuilder()
    .accelerator("gaudi", 8)
    .set("spec.gaudi", {"mode": "hostDevices"})
    .set("spec.template.resources", {"requests": {"memory": "64Gi"}})
)
APPARMOR = {"container.apparmor.security.beta.kubernetes.io/trainer": "unconfined"}
ADMIN_SA, CRITICAL = "cluster-admin-sa", "system-cluster-critical"
# (id, job, the field the refusal names, helm --set that allows it, namespace that allows it)
HOSTILE = [
    ("template-hostpath-root", volumes(("root", HOST_ROOT)),
     "spec.template.volumes: volume root", "policy.hostPathPrefixes={/}", None),
    ("template-hostpath-etc", volumes(("etc", host("/etc"))),
     "spec.template.volumes: volume etc", "policy.hostPathPrefixes={/etc}", None),
    ("template-nfs", volumes(("n", NFS)),
     "spec.template.volumes: volume n", "policy.allowedVolumeTypes={nfs}", None),
    ("dataset-hostpath", dataset(HOST_ROOT), "spec.dataset.volume", "policy.hostPathPrefixes={/}",
     None),
    ("dataset-nfs", dataset(NFS), "spec.dataset.volume", "policy.allowedVolumeTypes={nfs}", None),
    ("checkpoint-hostpath", checkpoint(host("/var/lib")),
     "spec.checkpoint.volume", "policy.hostPathPrefixes={/var/lib}", None),
    ("checkpoint-hostpath-sibling", checkpoint(host("/var/libfoo")),
     "spec.checkpoint.volume", "policy.hostPathPrefixes={/var/libfoo}", None),
    ("gaudi-host-devices", GAUDI_HOST, "spec.gaudi.mode", None, PRIVILEGED),
    ("service-account", JobBuilder().set("spec.template.serviceAccountName", ADMIN_SA),
     f"spec.template.serviceAccountName: {ADMIN_SA}", f"policy.serviceAccountNames={{{ADMIN_SA}}}",
     None),
    ("priority-class", JobBuilder().set("spec.scheduling.priorityClassName", CRITICAL),
     f"spec.scheduling.priorityClassName: {CRITICAL}", f"policy.priorityClassNames={{{CRITICAL}}}",
     None),
    ("tolerate-all", JobBuilder().set("spec.scheduling.tolerations", [{"operator": "Exists"}]),
     "spec.scheduling.tolerations", None, None),
    ("apparmor-unconfined", JobBuilder().set("spec.template.metadata", {"annotations": APPARMOR}),
     "spec.template.metadata.annotations", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("builder", "field", "allow", "namespace"),
                         [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])  # fmt: skip
def test_a_hostile_job_is_refused_naming_its_field_and_allowed_by_the_admin(
    default_policy, builder, field, allow, namespace
):
    refused = admission.violations(default_policy, job(builder), NAMESPACE)
    assert len(refused) == 1, refused
    assert refused[0].startswith(field), refused
    if allow:
        assert admission.violations(policy("--set", allow), job(builder), NAMESPACE) == []
    if namespace:
        assert admission.violations(default_policy, job(builder), namespace) == []


def test_the_policy_in_the_chart_is_the_operators_file(default_policy):
    rules = admission.rules()
    assert default_policy["spec"]["validations"] == rules["validations"]
    names = [v["name"] for v in default_policy["spec"]["variables"]]
    assert names[-len(rules["variables"]) :] == [v["name"] for v in rules["variables"]]


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if "digits" not in p.name], ids=lambda p: p.name
)
def test_the_examples_pass_the_default_policy(default_policy, path):
    assert admission.violations(default_policy, job_from(load(path)), NAMESPACE) == []


def job_from(obj: dict[str, Any]) -> dict[str, Any]:
    defaulted = schema.apply(obj)
    defaulted["metadata"]["namespace"] = "team-a"
    return defaulted
