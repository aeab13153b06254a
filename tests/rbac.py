"""RBAC objects tests create: a ServiceAccount that may read pods in one namespace only."""

from __future__ import annotations

from kubernetes import client as kube_client


def grant_pod_reader(api_client: kube_client.ApiClient, namespace: str, account: str) -> None:
    """Create ServiceAccount `account` with a Role (get/list pods) bound in `namespace`."""
    kube_client.CoreV1Api(api_client).create_namespaced_service_account(
        namespace, {"metadata": {"name": account}}
    )
    rbac = kube_client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{account}-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )
