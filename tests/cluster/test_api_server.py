"""The local control plane is a real Kubernetes: CRDs, watches, scheduling, garbage collection
and RBAC behave as on any cluster."""

from __future__ import annotations

import pytest
from kubernetes import client as kube_client
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from devcluster import config
from devcluster.nodes import FAKE_TOLERATION
from tests.polling import eventually
from tests.rbac import grant_pod_reader

pytestmark = pytest.mark.cluster

GROUP = "test.densenet.dev"


def widget_crd() -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_objects_are_created_validated_and_watched(api_client, namespace):
    extensions = kube_client.ApiextensionsV1Api(api_client)
    try:
        extensions.create_custom_resource_definition(widget_crd())
    except ApiException as err:
        assert err.status == 409

    def established():
        crd = extensions.read_custom_resource_definition(f"widgets.{GROUP}")
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    eventually(established, what="CRD Established")
    custom = kube_client.CustomObjectsApi(api_client)

    # The schema is enforced by the server, not by us.
    def create_widget(name: str, size: int) -> dict:
        widget = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": size},
        }
        return custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", widget)

    with pytest.raises(ApiException) as invalid:
        create_widget("bad", 0)
    assert invalid.value.status == 422

    created = create_widget("w1", 3)
    custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, "widgets", "w1", {"spec": {"size": 4}}
    )
    seen = []
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        GROUP,
        "v1",
        namespace,
        "widgets",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=10,
    )
    for event in stream:
        seen.append((event["type"], event["object"]["spec"]["size"]))
        if event["type"] == "MODIFIED":
            break
    assert seen == [("MODIFIED", 4)]


def accelerator_pod(name: str, count: int) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "tolerations": [FAKE_TOLERATION],
            "nodeSelector": {config.FAKE_NODE_LABEL: "true"},
            "containers": [
                {
                    "name": "main",
                    "image": "densenet-trainer:test",
                    "resources": {
                        "requests": {config.ASCEND_RESOURCE: str(count)},
                        "limits": {config.ASCEND_RESOURCE: str(count)},
                    },
                }
            ],
        },
    }


def test_npu_pod_is_bound_to_a_fake_ascend_node(core_v1, namespace):
    core_v1.create_namespaced_pod(namespace, accelerator_pod("npu8", 8))
    pod = eventually(
        lambda: (
            (p := core_v1.read_namespaced_pod("npu8", namespace)).status.phase == "Running" and p
        ),
        what="pod Running on a kwok node",
    )
    node = core_v1.read_node(pod.spec.node_name)
    assert node.metadata.labels[config.FAKE_NODE_LABEL] == "true"
    assert node.status.allocatable[config.ASCEND_RESOURCE] == "8"


def test_pod_asking_more_npus_than_any_node_stays_pending(core_v1, namespace):
    core_v1.create_namespaced_pod(namespace, accelerator_pod("npu9", 9))

    def failed_scheduling():
        events = core_v1.list_namespaced_event(
            namespace, field_selector="involvedObject.name=npu9,reason=FailedScheduling"
        ).items
        return events and events[0]

    event = eventually(failed_scheduling, what="FailedScheduling event")
    assert config.ASCEND_RESOURCE in event.message
    pod = core_v1.read_namespaced_pod("npu9", namespace)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_deleting_the_owner_garbage_collects_owned_objects(core_v1, namespace):
    owner = core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core_v1.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                        "blockOwnerDeletion": True,
                    }
                ],
            }
        },
    )
    core_v1.delete_namespaced_config_map("owner", namespace)

    def owned_gone():
        names = {cm.metadata.name for cm in core_v1.list_namespaced_config_map(namespace).items}
        return "owned" not in names

    eventually(owned_gone, what="garbage collection of the owned ConfigMap")


def test_namespaced_role_allows_its_namespace_and_denies_others(
    cluster, api_client, core_v1, namespace
):
    other = f"{namespace[:50]}-other"
    core_v1.create_namespace({"metadata": {"name": other}})
    try:
        grant_pod_reader(api_client, namespace, "reader")
        token = core_v1.create_namespaced_service_account_token(
            "reader", namespace, {"spec": {"expirationSeconds": 600}}
        ).status.token
        configuration = kube_client.Configuration()
        configuration.host = api_client.configuration.host
        configuration.ssl_ca_cert = str(cluster.paths.ca_cert)
        configuration.api_key = {"authorization": f"Bearer {token}"}
        as_reader = kube_client.CoreV1Api(kube_client.ApiClient(configuration))

        assert as_reader.list_namespaced_pod(namespace).items == []
        with pytest.raises(ApiException) as denied:
            as_reader.list_namespaced_pod(other)
        assert denied.value.status == 403
        with pytest.raises(ApiException) as denied_secrets:
            as_reader.list_namespaced_secret(namespace)
        assert denied_secrets.value.status == 403
    finally:
        core_v1.delete_namespace(other)
