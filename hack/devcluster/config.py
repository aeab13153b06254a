"""Where the local cluster lives and how its pieces find each other: the one source of truth
for its ports, address ranges and paths (the control plane, the real node, the tests)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"

# Ports on 127.0.0.1 (pods reach the API server through a relay on their bridge, see below).
ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
API_SERVER_PORT = 16443
CONTROLLER_MANAGER_PORT = 10357
SCHEDULER_PORT = 10359
KWOK_PORT = 10347
# Kueue's manager (devcluster up --with kueue): webhooks and probes, loopback only.
KUEUE_WEBHOOK_PORT = 19443
KUEUE_HEALTH_PORT = 18081

# Address plan. None of these ranges overlap; nothing outside them or loopback is ever dialled.
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
# kwok (fake) nodes hand out pod IPs from here. They lead nowhere: never connect to them.
KWOK_POD_CIDR = ipaddress.ip_network("10.90.0.0/16")
# The real node (`devcluster up --with node`: containerd and the kubelet, realnode.py): its
# pods on a bridge of their own; the kubelet serves on the gateway (the node's InternalIP,
# dialled by the API server for logs and exec) and reports health on loopback.
REAL_NODE_NAME = "realnode-0"
REAL_NODE_POD_CIDR = ipaddress.ip_network("10.88.0.0/24")
REAL_NODE_BRIDGE = "dncni0"
REAL_NODE_GATEWAY = ipaddress.ip_address("10.88.0.1")
# What the API server advertises: the `kubernetes` Service's endpoint, where kube-proxy sends the
# real node's pods (a relay to loopback while the node runs, realnode.py). Not loopback, which a
# pod's DNAT cannot reach.
API_SERVER_ADVERTISE = str(REAL_NODE_GATEWAY)
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_METRICS_PORT = 10249
COREDNS_READY_PORT = 18181

# Labels on nodes.
FAKE_NODE_LABEL = "densenet.dev/fake-node"  # "true" on kwok nodes: their pods never run
# "true" on the real node, which is also tainted with it (NoSchedule): only pods that ask run there.
REAL_NODE_LABEL = "densenet.dev/real-node"

ASCEND_RESOURCE = "huawei.com/Ascend910"
GAUDI_RESOURCE = "habana.ai/gaudi"


def cache_root() -> Path:
    """Per-user cache, shared with hack/build-binaries.sh (same variable, same default)."""
    if "DENSENET_CACHE_DIR" in os.environ:
        return Path(os.environ["DENSENET_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(xdg) / "densenet-operator"


@dataclass(frozen=True)
class ClusterPaths:
    """Files of one running local cluster."""

    root: Path

    @classmethod
    def default(cls) -> ClusterPaths:
        return cls(Path(os.environ.get("DENSENET_CLUSTER_DIR", cache_root() / "cluster")))

    @property
    def bin_dir(self) -> Path:
        return cache_root() / "bin"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def audit_policy(self) -> Path:
        return self.root / "audit-policy.yaml"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"
