"""The runner's Node object and its heartbeat (node status plus a Lease in kube-node-lease)."""

from __future__ import annotations

import logging
import platform
import threading
from dataclasses import dataclass, field

from devcluster.config import RUNNER_NODE_LABEL
from devnode.kube import Kube, KubeError
from devnode.timefmt import now_micro, now_rfc3339

log = logging.getLogger(__name__)

LEASE_SECONDS = 40
LEASE_RENEW_S = 10
STATUS_EVERY_S = 60


@dataclass(frozen=True)
class NodeSpec:
    name: str
    ip: str
    cpu: str
    memory: str
    pods: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict, ...] = ()
    logs_port: int = 0

    def capacity(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)}

    def all_labels(self) -> dict[str, str]:
        return {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
            RUNNER_NODE_LABEL: "true",
            **self.labels,
        }


def node_status(spec: NodeSpec, ready: bool = True, reason: str = "KubeletReady") -> dict:
    now = now_rfc3339()

    def cond(kind: str, status: str, why: str) -> dict:
        return {
            "type": kind,
            "status": status,
            "reason": why,
            "message": why,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": spec.capacity(),
        "allocatable": spec.capacity(),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            cond("Ready", "True" if ready else "Unknown", reason),
        ],
        # No Hostname address: the API server would resolve it through the host's DNS.
        "addresses": [{"type": "InternalIP", "address": spec.ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.logs_port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "devnode",
            "containerRuntimeVersion": "devnode://0.1",
            "kubeletVersion": "v0.0.0-devnode",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": spec.all_labels()["kubernetes.io/arch"],
        },
    }


def node_manifest(spec: NodeSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": spec.all_labels()},
        "spec": {"taints": list(spec.taints)},
        "status": node_status(spec),
    }


def lease_manifest(name: str, node_uid: str) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now_micro(),
        },
    }


class NodeAgent(threading.Thread):
    """Registers the Node, then keeps its Lease and Ready condition fresh."""

    def __init__(self, kube: Kube, spec: NodeSpec) -> None:
        super().__init__(name="node heartbeat", daemon=True)
        self.kube = kube
        self.spec = spec
        self.stopping = threading.Event()
        self.node_uid = ""

    def register(self) -> None:
        path = f"/api/v1/nodes/{self.spec.name}"
        try:
            node = self.kube.get(path)
            node = self.kube.merge_patch(
                path,
                {
                    "metadata": {"labels": self.spec.all_labels()},
                    "spec": {"taints": list(self.spec.taints)},
                },
            )
        except KubeError as exc:
            if exc.status != 404:
                raise
            node = self.kube.request("POST", "/api/v1/nodes", node_manifest(self.spec))
        self.node_uid = node["metadata"]["uid"]
        # A merge patch keeps the map keys it does not name: unset what an older run advertised.
        stale = set((node.get("status") or {}).get("capacity") or {}) - set(self.spec.capacity())
        if stale:
            gone = dict.fromkeys(stale)
            self.kube.merge_patch(
                f"/api/v1/nodes/{self.spec.name}/status",
                {"status": {"capacity": gone, "allocatable": gone}},
            )
        self.patch_status(ready=True)
        self.renew_lease()

    def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.spec.name}"
        try:
            self.kube.merge_patch(
                path, {"spec": {"holderIdentity": self.spec.name, "renewTime": now_micro()}}
            )
        except KubeError as exc:
            if exc.status != 404:
                raise
            self.kube.request(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                lease_manifest(self.spec.name, self.node_uid),
            )

    def run(self) -> None:
        since_status = 0.0
        while not self.stopping.wait(LEASE_RENEW_S):
            try:
                self.renew_lease()
                since_status += LEASE_RENEW_S
                if since_status >= STATUS_EVERY_S:
                    since_status = 0.0
                    self.patch_status(ready=True)
            except Exception as exc:  # keep beating; the API server may be restarting
                log.warning("node heartbeat failed: %s", exc)

    def patch_status(self, ready: bool, reason: str = "KubeletReady") -> None:
        # A JSON merge patch replaces the lists (addresses, conditions) instead of merging them.
        self.kube.merge_patch(
            f"/api/v1/nodes/{self.spec.name}/status",
            {"status": node_status(self.spec, ready, reason)},
        )
