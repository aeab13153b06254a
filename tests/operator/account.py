"""The chart's ServiceAccount for a test namespace: the operator in the tests runs with exactly
the RBAC the Helm chart grants, never with the admin kubeconfig, so a missing grant fails the
tests as it would fail a real install.

The chart is rendered by the pinned helm (`helm template`, namespaced: watchNamespaces is the
test namespace, which is also the release namespace), its ServiceAccount, Roles, ClusterRole and
bindings created through the API, and a token requested for the account (TokenRequest, as
`kubectl create token` does). Cluster-scoped objects are owned by the test namespace, so the
garbage collector removes them with it. Once per namespace: later operators reuse the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from tests.deploy.tools import render
from tests.polling import eventually

RBAC_TEMPLATES = ("templates/serviceaccount.yaml", "templates/rbac.yaml")
TOKEN_SECONDS = 4 * 3600

_kubeconfigs: dict[str, Path] = {}


def fullname(namespace: str) -> str:
    """The release's name for `namespace`: its cluster-scoped objects and its admission policy."""
    return f"dnop-{namespace}"[:63]


def chart_rbac(namespace: str, *values: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC objects for an operator watching `namespace` and
    released into it (helm `values`, e.g. --set gangScheduling.kueue=true, on top)."""
    show = [arg for template in RBAC_TEMPLATES for arg in ("--show-only", template)]
    return render(
        *values,
        "--set", f"watchNamespaces={{{namespace}}}",
        # Unique cluster-scoped names per namespace (a namespace name has at most 63 chars).
        # (The slice is of the name only: cutting the whole --set string made parametrized
        # tests' namespaces share one ClusterRoleBinding, bound to the first one's account.)
        "--set", f"fullnameOverride={fullname(namespace)}",
        *show, release="dnop", namespace=namespace,
    )  # fmt: skip


def account_name(objects: list[dict[str, Any]]) -> str:
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    return account["metadata"]["name"]


def _create(api_client: kube_client.ApiClient, obj: dict[str, Any]) -> None:
    core = kube_client.CoreV1Api(api_client)
    rbac = kube_client.RbacAuthorizationV1Api(api_client)
    namespace = obj["metadata"].get("namespace")
    create = {
        "ServiceAccount": lambda: core.create_namespaced_service_account(namespace, obj),
        "Role": lambda: rbac.create_namespaced_role(namespace, obj),
        "RoleBinding": lambda: rbac.create_namespaced_role_binding(namespace, obj),
        "ClusterRole": lambda: rbac.create_cluster_role(obj),
        "ClusterRoleBinding": lambda: rbac.create_cluster_role_binding(obj),
    }[obj["kind"]]
    try:
        create()
    except ApiException as err:
        if err.status != 409:
            raise


def _allowed(api_client: kube_client.ApiClient, user: str, attributes: dict[str, str]) -> bool:
    spec = {"user": user, "groups": ["system:serviceaccounts"], "resourceAttributes": attributes}
    review = kube_client.AuthorizationV1Api(api_client).create_subject_access_review({"spec": spec})
    return bool(review.status.allowed)


def install_chart_rbac(
    api_client: kube_client.ApiClient, namespace: str, values: tuple[str, ...] = ()
) -> str:
    """Create the chart's account and RBAC for `namespace`; returns the account's name once
    the authorizer answers for every binding (so the operator's first request is not a 403)."""
    objects = chart_rbac(namespace, *values)
    owner = kube_client.CoreV1Api(api_client).read_namespace(namespace)
    for obj in objects:
        if obj["kind"].startswith("Cluster"):
            obj["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Namespace", "name": namespace,
                 "uid": owner.metadata.uid}
            ]  # fmt: skip
        _create(api_client, obj)
    account = account_name(objects)
    user = f"system:serviceaccount:{namespace}:{account}"
    # One request each binding grants: the job Role, the ClusterRole, the leader-election Role.
    checks = [
        {"namespace": namespace, "group": "densenet.dev", "resource": "densenettrainingjobs",
         "verb": "list"},
        {"group": "", "resource": "namespaces", "verb": "watch"},
        {"namespace": namespace, "group": "coordination.k8s.io", "resource": "leases",
         "verb": "update"},
    ]  # fmt: skip
    for attributes in checks:
        eventually(
            lambda a=attributes: _allowed(api_client, user, a),
            timeout=30,
            interval=0.1,
            what=f"RBAC to allow {user} {attributes}",
        )
    return account


def token_kubeconfig(
    api_client: kube_client.ApiClient, ca_cert: Path, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig at `path` that authenticates as the ServiceAccount with a bound token."""
    token = (
        kube_client.CoreV1Api(api_client)
        .create_namespaced_service_account_token(
            account, namespace, {"spec": {"expirationSeconds": TOKEN_SECONDS}}
        )
        .status.token
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": api_client.configuration.host,
                    "certificate-authority": str(ca_cert),
                },
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def chart_kubeconfig(
    cluster, namespace: str, directory: Path, values: tuple[str, ...] = ()
) -> Path:
    """A kubeconfig of the chart's ServiceAccount for an operator watching `namespace` (the
    chart rendered with helm `values` on top; the first call for a namespace decides)."""
    if namespace not in _kubeconfigs:
        api_client = cluster.api_client()
        account = install_chart_rbac(api_client, namespace, values)
        path = directory / f"{account}.kubeconfig"
        _kubeconfigs[namespace] = token_kubeconfig(
            api_client, cluster.paths.ca_cert, namespace, account, path
        )
    return _kubeconfigs[namespace]
