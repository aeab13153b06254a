"""What every pod worker shares: the API client, the caches, the network and the allocators."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devcluster.config import API_SERVER_PORT
from devnode.envvars import configmap_data, secret_data
from devnode.images import ImageRule
from devnode.ipam import IPAllocator
from devnode.kube import Kube, Store
from devnode.netns import PodNetwork
from devnode.node import NodeSpec
from devnode.volumefs import MountPoints

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


@dataclass
class Context:
    kube: Kube
    node: NodeSpec
    net: PodNetwork
    state_dir: Path
    rules: tuple[ImageRule, ...]
    ipam: IPAllocator
    mountpoints: MountPoints
    pods: Store
    services: Store
    configmaps: Store
    secrets: Store
    ca_pem: bytes
    wake: threading.Event  # set to make the runner sync now (e.g. a probe changed its mind)
    api_host: str
    api_port: int = API_SERVER_PORT
    host_path: str = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")

    def configmap(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        obj = self.configmaps.get(namespace, name)
        if obj is None and name == ROOT_CA_CONFIGMAP:
            # The controller-manager publishes it only with --root-ca-file; the CA is known here.
            return {"ca.crt": self.ca_pem}
        return configmap_data(obj) if obj is not None else None

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        obj = self.secrets.get(namespace, name)
        return secret_data(obj) if obj is not None else None

    def service_env(self) -> dict[str, str]:
        host, port = self.api_host, str(self.api_port)
        return {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": port,
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
        }
