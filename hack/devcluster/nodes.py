"""The fake (kwok) nodes of the local cluster. Pure: returns Node manifests."""

from __future__ import annotations

from dataclasses import dataclass, field

from devcluster import config

FAKE_TAINT = {"key": config.FAKE_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
# Pods that should land on a fake node tolerate its taint; nothing else ends up there by accident.
FAKE_TOLERATION = {
    "key": config.FAKE_NODE_LABEL,
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}


@dataclass(frozen=True)
class FakeNodeSpec:
    name: str
    extra_capacity: dict[str, str] = field(default_factory=dict)
    extra_labels: dict[str, str] = field(default_factory=dict)
    cpu: str = "96"
    memory: str = "512Gi"


FAKE_NODES = (
    FakeNodeSpec("kwok-cpu-0"),
    FakeNodeSpec("kwok-cpu-1"),
    FakeNodeSpec(
        "kwok-ascend-0",
        {config.ASCEND_RESOURCE: "8"},
        {"accelerator": "huawei-Ascend910"},
    ),
    FakeNodeSpec(
        "kwok-ascend-1",
        {config.ASCEND_RESOURCE: "8"},
        {"accelerator": "huawei-Ascend910"},
    ),
    FakeNodeSpec(
        "kwok-gaudi-0",
        {config.GAUDI_RESOURCE: "8", "hugepages-2Mi": "64Gi"},
        {"accelerator": "habana-gaudi"},
    ),
)


def node_manifest(spec: FakeNodeSpec) -> dict:
    capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": "110", **spec.extra_capacity}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": {
                "kubernetes.io/hostname": spec.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                config.FAKE_NODE_LABEL: "true",
                **spec.extra_labels,
            },
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"taints": [FAKE_TAINT]},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }
