"""The chart's admin policy (a ValidatingAdmissionPolicy) evaluated offline by the operator's
admission.py, as the operator evaluates it: every hostile job is refused naming its field, and
allowed once the admin's value or namespace label allows it. Against the real API server with
the chart installed: tests/operator/test_admission_cluster.py."""

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
SECCOMP = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
SECRET_ENV = [
    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-password", "key": "password"}}}
]
ASCEND_PINNED = (
    JobBuilder()
    .accelerator("ascend", 1)
    .set("spec.ascend.source", "static")
    .set(
        "spec.ascend.servers",
        [
            {
                "serverId": "s0",
                "nodeName": "node-a",
                "devices": [{"deviceId": "0", "deviceIp": "192.0.2.1"}],
            }
        ],
    )
)
LABELLED_FALSE = {
    **NAMESPACE,
    "metadata": {"name": "team-a", "labels": {"densenet.dev/allow-privileged": "false"}},
}
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
    ("seccomp-unconfined", JobBuilder().set("spec.template.metadata", {"annotations": SECCOMP}),
     "spec.template.metadata.annotations", None, None),
    ("template-hostpath-var-run", volumes(("sock", host("/var/run/docker.sock"))),
     "spec.template.volumes: volume sock", "policy.hostPathPrefixes={/var/run}", None),
    ("template-hostpath-proc", volumes(("proc", host("/proc"))),
     "spec.template.volumes: volume proc", "policy.hostPathPrefixes={/proc}", None),
    ("template-iscsi", volumes(("i", {"iscsi": {"targetPortal": "192.0.2.1:3260",
                                               "iqn": "iqn.2001-04.com.example:x", "lun": 0}})),
     "spec.template.volumes: volume i", "policy.allowedVolumeTypes={iscsi}", None),
    ("template-cephfs", volumes(("c", {"cephfs": {"monitors": ["192.0.2.1:6789"]}})),
     "spec.template.volumes: volume c", "policy.allowedVolumeTypes={cephfs}", None),
    ("template-rbd", volumes(("r", {"rbd": {"monitors": ["192.0.2.1"], "image": "x"}})),
     "spec.template.volumes: volume r", "policy.allowedVolumeTypes={rbd}", None),
    ("template-flexvolume", volumes(("f", {"flexVolume": {"driver": "example/root"}})),
     "spec.template.volumes: volume f", "policy.allowedVolumeTypes={flexVolume}", None),
    ("template-projected", volumes(("p", {"projected": {"sources": []}})),
     "spec.template.volumes: volume p", "policy.allowedVolumeTypes={projected}", None),
    ("checkpoint-nfs", checkpoint(NFS), "spec.checkpoint.volume",
     "policy.allowedVolumeTypes={nfs}", None),
    ("dataset-hostpath-sibling", dataset(host("/datasets-private")), "spec.dataset.volume",
     "policy.hostPathPrefixes={/datasets-private}", None),
    ("ascend-node-name", ASCEND_PINNED, "spec.ascend.servers[].nodeName",
     "policy.allowNodeName=true", None),
    ("tolerate-all-no-effect", JobBuilder().set(
        "spec.scheduling.tolerations", [{"operator": "Exists", "effect": "NoSchedule"}]),
     "spec.scheduling.tolerations", None, None),
    ("priority-node-critical",
     JobBuilder().set("spec.scheduling.priorityClassName", "system-node-critical"),
     "spec.scheduling.priorityClassName: system-node-critical",
     "policy.priorityClassNames={system-node-critical}", None),
    ("env-from-secret", JobBuilder().set("spec.template.env", SECRET_ENV),
     "spec.template.env: valueFrom.secretKeyRef names Secret db-password",
     "policy.secretNames={db-password}", None),
    ("env-from-any-secret", JobBuilder().set("spec.template.env", SECRET_ENV),
     "spec.template.env: valueFrom.secretKeyRef", "policy.secretNames={*}", None),
    ("secret-volume", volumes(("s", {"secret": {"secretName": "admin-kubeconfig"}})),
     "spec.template.volumes: a secret volume names Secret admin-kubeconfig",
     "policy.secretNames={admin-kubeconfig}", None),
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


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_pass_the_default_policy(default_policy, path):
    assert admission.violations(default_policy, job_from(load(path)), NAMESPACE) == []


def job_from(obj: dict[str, Any]) -> dict[str, Any]:
    defaulted = schema.apply(obj)
    defaulted["metadata"]["namespace"] = "team-a"
    return defaulted


def test_the_corpus_covers_at_least_25_hostile_jobs():
    assert len({h[0] for h in HOSTILE}) == len(HOSTILE) >= 25


@pytest.mark.parametrize(
    "path", ["/var/tmp/densenet-demo/../../../etc", "/var/tmp/densenet-demo/..", "/../etc"]
)
def test_a_hostpath_never_climbs_out_of_an_allowed_prefix(path):
    allowed = policy("--set", "policy.hostPathPrefixes={/var/tmp/densenet-demo}")
    inside = volumes(("data", host("/var/tmp/densenet-demo/a..b/c..")))
    assert admission.violations(allowed, job(inside), NAMESPACE) == []
    refused = admission.violations(allowed, job(volumes(("data", host(path)))), NAMESPACE)
    assert [m.split(" uses ")[0] for m in refused] == ["spec.template.volumes: volume data"]


def test_only_the_label_value_true_allows_privileged_pods(default_policy):
    refused = admission.violations(default_policy, job(GAUDI_HOST), LABELLED_FALSE)
    assert [m.split(":")[0] for m in refused] == ["spec.gaudi.mode"]
