"""Kueue in the local cluster (`devcluster up --with kueue`).

The manager is built from the pinned Go module (hack/build-binaries.sh), which also stages the
module's CRDs and webhook manifests. Its configuration is the one Kueue's docs give for plain
pods (the `pod` integration, `managedJobsNamespaceSelector`); what this machine needs changed
is commented in :func:`configuration`. The API server reaches its webhooks on loopback: the
manifests' Service references become URLs on 127.0.0.1, served with a certificate the
cluster's own CA signs. The pure functions turn the staged manifests into the objects to
apply; :func:`install` and :func:`register_webhooks` talk to the cluster.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from devcluster import config
from devcluster.components import Component
from devcluster.config import ClusterPaths

NAME = "kueue"
SYSTEM_NAMESPACE = "kueue-system"
KUEUE_GROUP = "kueue.x-k8s.io"
MANAGED_LABEL = "kueue.x-k8s.io/managed"  # on the pods Kueue's webhook takes, with:
MANAGED_FINALIZER = "kueue.x-k8s.io/managed"
# Namespaces Kueue's own kustomization keeps its pod webhooks out of.
UNMANAGED_NAMESPACES = ("kube-system", SYSTEM_NAMESPACE)
# The release's kustomization prefixes every object's name with this.
NAME_PREFIX = "kueue-"
# CRDs whose stored version Kueue converts through its /convert webhook (the module's
# config/components/crd/kustomization.yaml patches).
CONVERTED_CRDS = ("localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters")


def manifests_dir(version: str) -> Path:
    """Where hack/build-binaries.sh staged the module's CRDs and webhook manifests."""
    return config.cache_root() / f"kueue-{version}"


def certs_dir(paths: ClusterPaths) -> Path:
    return paths.pki / "kueue"


def webhook_url(path: str) -> str:
    return f"https://127.0.0.1:{config.KUEUE_WEBHOOK_PORT}{path}"


def managed_namespaces() -> dict[str, Any]:
    """Every namespace but Kueue's unmanaged ones (as a label selector)."""
    return {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": list(UNMANAGED_NAMESPACES),
            }
        ]
    }


def configuration(paths: ClusterPaths) -> dict[str, Any]:
    """Kueue's Configuration for plain pods (docs: tasks/run/plain_pods.md)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": SYSTEM_NAMESPACE,
        # Loopback ports of our own: the defaults (:8081, :8443, :9443) listen on every
        # address and may be taken on a shared machine.
        "health": {"healthProbeBindAddress": f"127.0.0.1:{config.KUEUE_HEALTH_PORT}"},
        "metrics": {"bindAddress": "0"},  # off: nothing here scrapes Kueue
        "webhook": {
            "port": config.KUEUE_WEBHOOK_PORT,
            "host": "127.0.0.1",
            "certDir": str(certs_dir(paths)),
        },
        # One manager, no Deployment: no leader election, and the cluster's CA signs the
        # webhook certificate instead of Kueue's internal rotator (which writes a Secret a
        # Deployment would mount).
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        # The visibility API is an aggregated API server on :8082 that needs an APIService;
        # the tests read Workloads directly.
        "featureGates": {"VisibilityOnDemand": False},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": managed_namespaces(),
        "integrations": {"frameworks": ["pod"]},
    }


# Kueue v0.17 with internal certificate management off opens a metrics certificate at a fixed
# path (cmd/kueue/main.go: /etc/kueue/metrics/certs) even with metrics off, and exits without
# one. The manager runs in a private mount namespace whose /etc is the host's with that
# directory overlaid (the webhook's certificate; nothing serves metrics), so the host's /etc
# is not written.
_IN_MOUNT_NAMESPACE = """set -e
scratch=$1 certs=$2; shift 2
mount -t tmpfs tmpfs "$scratch"
mkdir -p "$scratch/upper/kueue/metrics/certs" "$scratch/work"
cp "$certs/tls.crt" "$certs/tls.key" "$scratch/upper/kueue/metrics/certs/"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
exec "$@"
"""

# The script's $0 after it: "kueue-mounts".
_WRAPPER = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _IN_MOUNT_NAMESPACE]
_WRAPPER.append("kueue-mounts")


def scratch_dir(paths: ClusterPaths) -> Path:
    return paths.root / "kueue-etc"


def component(paths: ClusterPaths) -> Component:
    return Component(
        NAME,
        [str(paths.bin_dir / NAME), f"--config={paths.root / 'kueue-config.yaml'}"],
        health_url=f"http://127.0.0.1:{config.KUEUE_HEALTH_PORT}/readyz",
        env={"KUBECONFIG": str(paths.kubeconfig)},
        wrapper=[*_WRAPPER, str(scratch_dir(paths)), str(certs_dir(paths))],
        wrapper_programs=("unshare", "sh"),
    )


def crds(staged: Path, ca_bundle: bytes) -> list[dict[str, Any]]:
    """The module's CRDs, with the conversion webhook its kustomization adds on loopback."""
    objects = []
    for path in sorted((staged / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["plural"] in CONVERTED_CRDS:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {
                        "url": webhook_url("/convert"),
                        "caBundle": base64.b64encode(ca_bundle).decode(),
                    },
                    "conversionReviewVersions": ["v1"],
                },
            }
        objects.append(crd)
    return objects


def _serves(webhook: dict[str, Any]) -> bool:
    """A webhook for what this configuration enables: pods and Kueue's own objects."""
    return any(
        "pods" in rule.get("resources", []) or KUEUE_GROUP in rule.get("apiGroups", [])
        for rule in webhook.get("rules", [])
    )


def webhook_configurations(staged: Path, ca_bundle: bytes) -> list[dict[str, Any]]:
    """The module's webhook configurations with only the enabled integrations' webhooks, each
    reached at its path on loopback, the pod ones kept out of Kueue's unmanaged namespaces."""
    configurations = []
    for doc in yaml.safe_load_all((staged / "webhooks.yaml").read_text()):
        if not doc:
            continue
        obj = copy.deepcopy(doc)
        obj["metadata"] = {"name": NAME_PREFIX + doc["metadata"]["name"]}
        kept = []
        for webhook in obj["webhooks"]:
            if not _serves(webhook):
                continue
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {
                "url": webhook_url(path),
                "caBundle": base64.b64encode(ca_bundle).decode(),
            }
            if any("pods" in rule.get("resources", []) for rule in webhook["rules"]):
                webhook["namespaceSelector"] = managed_namespaces()
            kept.append(webhook)
        obj["webhooks"] = kept
        configurations.append(obj)
    return configurations


def prepare(paths: ClusterPaths) -> None:
    """Write the configuration and the webhook's serving certificate (tls.crt, tls.key)."""
    (paths.root / "kueue-config.yaml").write_text(yaml.safe_dump(configuration(paths)))
    scratch_dir(paths).mkdir(parents=True, exist_ok=True)
    target = certs_dir(paths)
    target.mkdir(parents=True, exist_ok=True)
    for suffix, name in ((".crt", "tls.crt"), (".key", "tls.key")):
        (target / name).write_bytes((paths.pki / f"webhook{suffix}").read_bytes())


def _create_or_replace(create: Any, replace: Any, read: Any, obj: dict[str, Any]) -> None:
    try:
        create(obj)
    except ApiException as err:
        if err.status != 409:
            raise
        obj["metadata"]["resourceVersion"] = read(obj["metadata"]["name"]).metadata.resource_version
        replace(obj["metadata"]["name"], obj)


def install(api: kube_client.ApiClient, staged: Path, ca_bundle: bytes) -> None:
    """Kueue's CRDs and namespace, before its manager starts (it watches them)."""
    ext = kube_client.ApiextensionsV1Api(api)
    for crd in crds(staged, ca_bundle):
        _create_or_replace(
            ext.create_custom_resource_definition,
            ext.replace_custom_resource_definition,
            ext.read_custom_resource_definition,
            crd,
        )
    try:
        kube_client.CoreV1Api(api).create_namespace({"metadata": {"name": SYSTEM_NAMESPACE}})
    except ApiException as err:
        if err.status != 409:
            raise


def register_webhooks(api: kube_client.ApiClient, staged: Path, ca_bundle: bytes) -> None:
    """The webhook configurations, once the manager serves them (pods would be refused
    before: the pod webhook fails closed, as Kueue ships it)."""
    adm = kube_client.AdmissionregistrationV1Api(api)
    for obj in webhook_configurations(staged, ca_bundle):
        if obj["kind"] == "MutatingWebhookConfiguration":
            calls = (
                adm.create_mutating_webhook_configuration,
                adm.replace_mutating_webhook_configuration,
                adm.read_mutating_webhook_configuration,
            )
        else:
            calls = (
                adm.create_validating_webhook_configuration,
                adm.replace_validating_webhook_configuration,
                adm.read_validating_webhook_configuration,
            )
        _create_or_replace(*calls, obj)


def unregister_webhooks(api: kube_client.ApiClient) -> None:
    adm = kube_client.AdmissionregistrationV1Api(api)
    for delete, kind in (
        (adm.delete_mutating_webhook_configuration, "mutating"),
        (adm.delete_validating_webhook_configuration, "validating"),
    ):
        try:
            delete(f"{NAME_PREFIX}{kind}-webhook-configuration")
        except ApiException as err:
            if err.status != 404:
                raise


def release(api: kube_client.ApiClient) -> None:
    """Take Kueue's finalizers off the pods it manages and off its Workloads, as uninstalling
    Kueue must: with its manager gone nothing else removes them, and those objects (and their
    namespaces) would never go."""
    custom = kube_client.CustomObjectsApi(api)
    for workload in custom.list_cluster_custom_object(KUEUE_GROUP, "v1beta2", "workloads")["items"]:
        meta = workload["metadata"]
        if meta.get("finalizers"):
            custom.patch_namespaced_custom_object(
                KUEUE_GROUP, "v1beta2", meta["namespace"], "workloads", meta["name"],
                {"metadata": {"finalizers": None}},
            )  # fmt: skip
    core = kube_client.CoreV1Api(api)
    for pod in core.list_pod_for_all_namespaces(label_selector=f"{MANAGED_LABEL}=true").items:
        kept = [f for f in pod.metadata.finalizers or [] if f != MANAGED_FINALIZER]
        if kept == (pod.metadata.finalizers or []):
            continue
        patch = [
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": pod.metadata.resource_version,
            },
            {"op": "replace", "path": "/metadata/finalizers", "value": kept},
        ]
        try:
            core.patch_namespaced_pod(pod.metadata.name, pod.metadata.namespace, patch)
        except ApiException as err:
            if err.status not in (404, 409, 422):
                raise
