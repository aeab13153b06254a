"""The chart's RBAC is what the operator does, proven from the API server's audit log.

The real operator runs under the chart's ServiceAccount (its rendered Roles, ClusterRole and
bindings, a TokenRequest token: tests/operator/account.py) and takes jobs through every path
that needs a permission: children created, a crash and a whole-job restart, an Ascend rank table
completed from the device plugin's annotations, a progress read that looks at a node first, a
pod name already taken by a foreign pod, Succeeded with cleanPodPolicy All and deleted by
ttlSecondsAfterFinished, Events. The local API server writes an audit log (hack/devcluster:
Metadata level for ServiceAccounts outside kube-system); the (API group, resource, verb) set the
account used there must equal the set the chart grants, both ways, and no request of the
account may have been refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from densenet_operator.render import ranktable
from tests.deploy.tools import rule_set
from tests.operator.account import account_name, chart_kubeconfig, chart_rbac, token_kubeconfig
from tests.operator.harness import Jobs, OperatorProcess, fake_trainer, real_node_job
from tests.operator.jobs import JobBuilder, ascend_annotation, on_kwok
from tests.polling import eventually

pytestmark = pytest.mark.cluster

Grant = tuple[str, str, str]  # (API group, resource[/subresource], verb)

FINALIZERS = ("densenet.dev", "densenettrainingjobs/finalizers", "update")

# Grants the operator needs that no request of its own shows, each with the reason.
NOT_A_REQUEST: dict[Grant, str] = {
    FINALIZERS: "checked by the OwnerReferencesPermissionEnforcement admission plugin when a "
    "child with blockOwnerDeletion is created; test_block_owner_deletion_needs_the_finalizers_"
    "grant shows the plugin refuses the create without it",
}


def granted(namespace: str, *values: str) -> set[Grant]:
    objects = chart_rbac(namespace, *values)
    roles = [o for o in objects if o["kind"] in ("Role", "ClusterRole")]
    return set().union(*(rule_set(r) for r in roles))


def audit_events(log: Path, username: str) -> list[dict[str, Any]]:
    events = []
    for path in sorted(log.parent.glob(f"{log.stem}*{log.suffix}")):  # with rotated backups
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event["user"]["username"] == username:
                events.append(event)
    return events


def used(events: list[dict[str, Any]]) -> set[Grant]:
    grants = set()
    for event in events:
        ref = event.get("objectRef")
        if ref is None or "resource" not in ref:
            continue  # discovery and other non-resource URLs, allowed to every account
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        grants.add((ref.get("apiGroup", ""), resource, event["verb"]))
    return grants


def act_as_device_plugin(jobs: Jobs, name: str, replicas: int) -> None:
    """What the Ascend device plugin does on a real node: annotate each scheduled pod with its
    NPUs (kwok's fake nodes have no plugin; hack/deviceplugin is the real node's)."""

    def scheduled() -> list[kube_client.V1Pod] | None:
        pods = [p for p in jobs.pods(name) if p.spec.node_name and p.status.host_ip]
        return pods if len(pods) == replicas else None

    for pod in eventually(scheduled, timeout=60, what=f"{name}'s pods scheduled"):
        index = int(pod.metadata.labels["densenet.dev/replica-index"])
        value = ascend_annotation(pod.metadata.name, pod.status.host_ip, [index])
        jobs.core.patch_namespaced_pod(
            pod.metadata.name,
            jobs.namespace,
            {"metadata": {"annotations": {ranktable.ANNOTATION: value}}},
        )


@pytest.mark.usefixtures("real_node")
def test_the_operator_uses_every_grant_of_the_chart_and_nothing_else(
    cluster, namespace, chart_crds, tmp_path, fake_dir
) -> None:
    jobs = Jobs(cluster.api_client(), namespace)
    # A pod not of the operator's holding the name of job "taken"'s first pod: the operator's
    # create gets 409 and reads the pod there (get), which it never adopts.
    nowhere = {"nodeSelector": {"densenet.dev/nowhere": "true"}}
    jobs.core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "taken-worker-0"},
            "spec": {**nowhere, "containers": [{"name": "x", "image": "x"}]},
        },
    )
    op = OperatorProcess(cluster, namespace, tmp_path).start()
    try:
        # A crash, a whole-job restart, Succeeded: pods cleaned up, the job deleted by its TTL.
        cycle = (
            real_node_job(JobBuilder("cycle").replicas(1))
            .set("spec.template", fake_trainer(fake_dir, FAKE_EXIT=1, FAKE_ONCE=1, FAKE_SLEEP=1))
            .set("spec.runPolicy.cleanPodPolicy", "All")
            .set("spec.runPolicy.ttlSecondsAfterFinished", 2)
        )
        jobs.create(cycle.build())
        # A volume the kubelet cannot mount: the pod stays ContainerCreating with no reason in
        # its status, so the operator reads its Warning Events (list events).
        unmountable = (
            real_node_job(JobBuilder("nomount").replicas(1))
            .set("spec.template", fake_trainer(fake_dir))
            .set("spec.template.volumes", [{"name": "cm", "configMap": {"name": "absent"}}])
            .set("spec.template.volumeMounts", [{"name": "cm", "mountPath": "/cm"}])
        )
        jobs.create(unmountable.build())
        # Ascend on fake nodes: the rank table ConfigMap completed from the pods' annotations;
        # Running, its chief on a --no-scrape-nodes node, which a progress read looks up.
        jobs.create(on_kwok("npu", "ascend", 1).build())
        jobs.create(on_kwok("taken", "cpu", 1, replicas=1).build())
        act_as_device_plugin(jobs, "npu", 2)
        eventually(
            lambda: (jobs.status("npu").get("rankTable") or {}).get("state") == "completed",
            timeout=60,
            what="npu's rank table completed",
        )
        jobs.wait_phase("npu", "Running")
        eventually(
            lambda: 'densenet_operator_progress_reads_total{result="skipped"}' in op.metrics(),
            timeout=30,
            what="a progress read skipped after reading the node",
        )

        def refused() -> bool:
            conditions = jobs.status("taken").get("conditions", [])
            return any(
                c["status"] == "True" and "taken-worker-0" in c["message"] for c in conditions
            )

        eventually(refused, timeout=60, what="taken's condition naming the foreign pod")
        eventually(
            lambda: (
                "FailedMount"
                in (jobs.condition("nomount", "PodsNotStarting") or {}).get("message", "")
            ),
            timeout=90,
            what="nomount's PodsNotStarting naming the kubelet's FailedMount",
        )
        eventually(lambda: jobs.gone("cycle"), timeout=120, what="cycle deleted by its TTL")
    finally:
        op.stop()

    username = f"system:serviceaccount:{namespace}:{account_name(chart_rbac(namespace))}"
    events = audit_events(cluster.paths.audit_log, username)
    assert events, f"no audit events of {username} in {cluster.paths.audit_log}"
    # The authorizer's own verdict: a 403 from admission (a quota, Pod Security) is not RBAC's.
    forbidden = sorted(
        {
            (e["verb"], e["requestURI"])
            for e in events
            if (e.get("annotations") or {}).get("authorization.k8s.io/decision") == "forbid"
        }
    )
    assert not forbidden, f"requests the chart's RBAC refused: {forbidden}"
    grants, uses = granted(namespace), used(events)
    assert not uses - grants, f"used without a grant: {sorted(uses - grants)}"
    unused = grants - uses - set(NOT_A_REQUEST)
    assert not unused, f"granted but never used by the operator: {sorted(unused)}"
    assert set(NOT_A_REQUEST) <= grants, "an allow-listed grant the chart no longer has"


def token_client(cluster, kubeconfig: Path) -> kube_client.ApiClient:
    return kube_config.new_client_from_config(config_file=str(kubeconfig))


def test_block_owner_deletion_needs_the_finalizers_grant(
    cluster, namespace, chart_crds, tmp_path
) -> None:
    """The local API server enforces OwnerReferencesPermissionEnforcement: a child whose
    ownerReference blocks its job's deletion is refused to an account that may create it but
    not update the job's finalizers, and accepted from the chart's account."""
    admin = cluster.api_client()
    jobs = Jobs(admin, namespace)
    job = jobs.create(JobBuilder("owner").build())
    owner = {
        "apiVersion": job["apiVersion"], "kind": job["kind"], "name": "owner",
        "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    core = kube_client.CoreV1Api(admin)
    rbac = kube_client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "no-finalizers"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-creator"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "no-finalizers"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-creator",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "no-finalizers", "namespace": namespace}
            ],
        },
    )
    plain = token_kubeconfig(
        admin, cluster.paths.ca_cert, namespace, "no-finalizers", tmp_path / "plain.kubeconfig"
    )
    chart = chart_kubeconfig(cluster, namespace, tmp_path)

    def create_as(kubeconfig: Path, name: str) -> None:
        body = {"metadata": {"name": name, "ownerReferences": [owner]}}
        kube_client.CoreV1Api(token_client(cluster, kubeconfig)).create_namespaced_config_map(
            namespace, body
        )

    def refused() -> str | None:
        try:
            create_as(plain, "plain")
        except ApiException as err:
            return err.body if err.status == 403 and "blockOwnerDeletion" in err.body else None
        raise AssertionError("created a blocking child without the finalizers grant")

    eventually(refused, timeout=30, what="the blockOwnerDeletion refusal (RBAC may lag)")
    create_as(chart, "chart")  # the chart grants update on densenettrainingjobs/finalizers
