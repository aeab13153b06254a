"""A real node in the local cluster (`devcluster up --with node`): the kubelet and containerd
built from their pinned modules, Debian's runc, the CNI bridge plugin, the pause image built
here, and the trainer image loaded from the Docker daemon (nothing pulled). A pod from the
image trains on it and its log is read through the API server from the real kubelet; stopping
the node leaves nothing of it on the machine."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as kube_client

from devcluster import cluster as devcluster
from devcluster import config, processes, realnode
from tests.deploy.e2e import SEED_LINE
from tests.images.conftest import Image
from tests.polling import eventually

pytestmark = pytest.mark.cluster

VERSIONS = devcluster.read_versions()
ON_THE_NODE = {
    "nodeSelector": {config.REAL_NODE_LABEL: "true"},
    "tolerations": [{"key": config.REAL_NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
}


@pytest.fixture(scope="module")
def real_node(cluster, core_v1, trainer_image: Image) -> Iterator[kube_client.V1Node]:
    devcluster.start_node(cluster.paths, log=print)
    loaded = realnode.load_images(cluster.paths, [trainer_image.name])
    print(f"loaded into the node's containerd: {loaded or 'nothing (already there)'}")
    yield core_v1.read_node(realnode.NAME)
    devcluster.stop_node(cluster.paths)


def test_the_node_is_ready_on_containerd_and_the_pinned_kubelet(real_node, core_v1):
    node = core_v1.read_node(realnode.NAME)
    info = node.status.node_info
    assert info.container_runtime_version == f"containerd://{VERSIONS['CONTAINERD_VERSION'][1:]}"
    assert info.kubelet_version == VERSIONS["KUBERNETES_VERSION"]
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    addresses = {a.type: a.address for a in node.status.addresses}
    assert addresses["InternalIP"] == str(config.REAL_NODE_GATEWAY)
    # Only pods that ask for the real node land on it.
    assert [(t.key, t.effect) for t in node.spec.taints] == [(config.REAL_NODE_LABEL, "NoSchedule")]


def test_a_pod_from_the_trainer_image_trains_to_succeeded(
    real_node, core_v1, namespace, trainer_image: Image
):
    args = [
        "--device", "cpu", "--synthetic", "--num_classes", "10", "--image_size", "32",
        "--batch_size", "4", "--max_train_steps", "5", "--iterations_per_loop", "1",
        "--display_every", "1", "--log_dir", "/tmp/model", "--metrics_port", "0",
    ]  # fmt: skip
    core_v1.create_namespaced_pod(namespace, {
        "metadata": {"name": "train"},
        "spec": {
            **ON_THE_NODE,
            "restartPolicy": "Never",
            "containers": [{
                "name": "trainer", "image": trainer_image.name, "imagePullPolicy": "Never",
                "args": args, "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    })  # fmt: skip

    def ended() -> kube_client.V1Pod | None:
        pod = core_v1.read_namespaced_pod("train", namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    pod = eventually(ended, timeout=300, interval=1, what="the trainer pod to end")
    log = core_v1.read_namespaced_pod_log("train", namespace)  # from the kubelet, via the API
    assert pod.status.phase == "Succeeded", log[-3000:]
    steps = [int(step) for step in SEED_LINE.findall(log)]
    assert steps and steps[-1] == 5, log[-3000:]
    assert pod.spec.node_name == realnode.NAME
    assert ipaddress.ip_address(pod.status.pod_ip) in config.REAL_NODE_POD_CIDR
    status = pod.status.container_statuses[0]
    assert status.container_id.startswith("containerd://")
    assert status.image_id.startswith("sha256:") or "@sha256:" in status.image_id


def leftovers(paths) -> list[str]:
    """What the node left on the machine: processes, mounts, its bridge and rule, cgroups."""
    node = realnode.NodePaths.of(paths)
    found = []
    for pid in processes.processes_running_from(paths.bin_dir):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        if any(name in cmdline for name in ("containerd", "kubelet")):
            found.append(f"process {pid} {cmdline}")
    found += [f"mount {m}" for m in realnode.mounts_under(node.root)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {config.REAL_NODE_BRIDGE}"] if config.REAL_NODE_BRIDGE in links else []
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=True)
    found += [r for r in rules.stdout.splitlines() if config.REAL_NODE_BRIDGE in r]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods*")]
    found += [str(p) for p in realnode.CONTAINER_LOG_LINKS.glob("*") if p.is_symlink()]
    return found


def test_stopping_the_node_leaves_nothing_behind(real_node, cluster):
    devcluster.stop_node(cluster.paths)
    assert leftovers(cluster.paths) == []
    # Images stay in containerd's root, for the next start.
    root = realnode.NodePaths.of(cluster.paths).containerd_root
    assert any(root.glob("io.containerd.content.v1.content/blobs/sha256/*"))
