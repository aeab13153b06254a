"""The real node of the local cluster (`devcluster up --with node`: containerd and the kubelet)
for the tests that run pods from the images `make images` built: started with those images
loaded into its containerd, left running for the next module that needs it, and where a pod's
processes are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from densenet_contract import image
from devcluster import cluster as devcluster
from devcluster import config, realnode

if TYPE_CHECKING:
    from tests.conftest import LocalCluster

# What a pod (or a job's scheduling) sets to land on the real node, which is tainted so that
# only pods that ask run there.
NODE_SELECTOR = {config.REAL_NODE_LABEL: "true"}
TOLERATION = {"key": config.REAL_NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
ON_THE_NODE = {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]}
# The images `make images` built (its IMAGE_TAG), loaded into the node's containerd.
IMAGE_TAG = os.environ.get("IMAGE_TAG", "dev")
TRAINER_IMAGE = f"densenet-trainer:{IMAGE_TAG}"
# Where its pods find the API server: the `kubernetes` Service's ClusterIP (kube-proxy).
KUBERNETES_SERVICE_HOST = str(next(config.SERVICE_CIDR.hosts()))


@pytest.fixture(scope="module")
def real_node(real_node_session: LocalCluster) -> None:
    """The node for a test module, with the trainer image loaded."""
    start_with_images(real_node_session.paths, [TRAINER_IMAGE])


@pytest.fixture
def fake_dir() -> Iterator[Path]:
    """A host directory for the stand-in trainer (tests/operator/harness.py): its script and
    the marker files its pods write as the images' user."""
    path = host_dir("densenet-fake-trainer-", writable=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_with_images(paths: config.ClusterPaths, images: Sequence[str]) -> None:
    """The node started (unless it runs) with `images` in its containerd (loaded from the
    Docker daemon unless already there). It stays up for the next module that needs it
    (starting it takes ~12 s) and stops at the end of the session (`real_node_session`)."""
    devcluster.start_node(paths, log=print)
    try:
        loaded = realnode.load_images(paths, list(images))
    except OSError as err:
        pytest.fail(f"{err}: the node runs the images `make images` builds")
    print(f"loaded into the node's containerd: {loaded or 'nothing (already there)'}")


def container_pid(paths: config.ClusterPaths, container_id: str) -> int:
    """The host pid of a running container's first process (`containerd://<id>`, as a pod's
    status names it), from its containerd task."""
    wanted = container_id.removeprefix("containerd://")
    for line in realnode.ctr(paths, "tasks", "list").decode().splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == wanted:
            return int(pid)
    raise LookupError(f"no containerd task for {container_id}")


def host_dir(prefix: str, writable: bool = False) -> Path:
    """A fresh directory for a hostPath volume that the images' user can read (and write, if
    `writable`): pytest's own temporary directories are private to root. The caller removes it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if writable:
        os.chown(path, image.TRAINER_UID, image.TRAINER_GID)
    return path


def sandboxes(paths: config.ClusterPaths, pod_uids: Sequence[str]) -> list[str]:
    """The pod sandboxes containerd still holds for `pod_uids` (through the CRI, as crictl)."""
    node = realnode.NodePaths.of(paths)
    listed = subprocess.run(
        [str(paths.bin_dir / "crictl"), f"--runtime-endpoint=unix://{node.socket}",
         "pods", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [
        f"sandbox {item['id'][:12]} of pod {item['metadata']['uid']}"
        for item in json.loads(listed).get("items") or []
        if item["metadata"]["uid"] in pod_uids
    ]
