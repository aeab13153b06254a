"""A real node in the local cluster (`devcluster up --with node`): the kubelet and containerd
built from their pinned modules, Debian's runc, the CNI bridge plugin, the pause image built
here, and the trainer image loaded from the Docker daemon (nothing pulled). A pod from the
image trains on it and its log is read through the API server from the real kubelet; stopping
the node leaves nothing of it on the machine."""

from __future__ import annotations

import ipaddress
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from densenet_operator.render import render_pod
from devcluster import cluster as devcluster
from devcluster import config, hostkernel, processes, realnode
from tests.deploy.e2e import SEED_LINE
from tests.images.conftest import Image
from tests.listeners import listeners
from tests.network import TINY_ARGS
from tests.operator.jobs import JobBuilder
from tests.polling import eventually
from tests.real_node import KUBERNETES_SERVICE_HOST, ON_THE_NODE, start_with_images

pytestmark = pytest.mark.cluster

VERSIONS = devcluster.read_versions()
HUGEPAGES_BEFORE = int(realnode.NR_HUGEPAGES.read_text())  # given back when the node stops
TUNABLES_BEFORE = hostkernel.read(hostkernel.KUBELET_TUNABLES)  # the kubelet changes them
KUBELET_DIR_BEFORE = realnode.DEVICE_PLUGIN_DIR.parent.exists()


@pytest.fixture(scope="module")
def real_node(real_node_session, core_v1, trainer_image: Image) -> kube_client.V1Node:
    start_with_images(real_node_session.paths, [trainer_image.name])
    return core_v1.read_node(realnode.NAME)


def test_the_node_is_ready_on_containerd_and_the_pinned_kubelet(real_node, core_v1):
    node = core_v1.read_node(realnode.NAME)
    info = node.status.node_info
    assert info.container_runtime_version == f"containerd://{VERSIONS['CONTAINERD_VERSION'][1:]}"
    assert info.kubelet_version == VERSIONS["KUBERNETES_VERSION"]
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    # The kubelet set the host's kernel tunables it wants (put back when the node stops).
    assert hostkernel.read(["vm/overcommit_memory", "kernel/panic"]) == {
        "vm/overcommit_memory": "1",
        "kernel/panic": "10",
    }
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
        # The tests' one-layer-per-block DenseNet: the node is under test here, not the model
        # (tests/images/test_images.py trains DenseNet-121 itself from the image).
        *TINY_ARGS,
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


# Run in a pod on the node: resolves the names, then calls the API server through the
# `kubernetes` Service with the pod's own ServiceAccount token, as the operator does in-cluster.
DNS_PROBE = """
import json, socket, ssl, sys, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
out = {name: socket.gethostbyname(name) for name in sys.argv[1:]}
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
request = urllib.request.Request("https://kubernetes.default.svc/version")
request.add_header("Authorization", "Bearer " + open(f"{sa}/token").read())
out["version"] = json.load(urllib.request.urlopen(request, context=context))["gitVersion"]
print(json.dumps(out))
"""


def test_pods_resolve_cluster_names_and_reach_the_api_server_through_its_service(
    real_node, core_v1, namespace, trainer_image: Image
):
    assert_names_resolve_and_the_api_answers(core_v1, namespace, trainer_image)
    # kube-proxy sent it to the node's own relay, the API server's advertised address (not
    # loopback, which a pod's DNAT cannot reach).
    endpoints = core_v1.read_namespaced_endpoints("kubernetes", "default")
    (subset,) = endpoints.subsets
    assert [a.ip for a in subset.addresses] == [config.API_SERVER_ADVERTISE]
    assert [p.port for p in subset.ports] == [config.API_SERVER_PORT]
    assert str(config.REAL_NODE_GATEWAY) in listeners(config.API_SERVER_PORT)


def assert_names_resolve_and_the_api_answers(core_v1, namespace: str, trainer_image: Image):
    """A pod resolves another's name under a headless Service and the `kubernetes` Service's
    name, and calls the API server through that Service with its own token."""
    core_v1.create_namespaced_service(namespace, {
        "metadata": {"name": "peers"},
        "spec": {"clusterIP": "None", "selector": {"app": "peer"},
                 "ports": [{"name": "tf", "port": 2222}]},
    })  # fmt: skip

    def pod(name: str, command: list[str], **spec) -> dict:
        return {
            "metadata": {"name": name, "labels": {"app": "peer"}},
            "spec": {**ON_THE_NODE, "restartPolicy": "Never", **spec, "containers": [{
                "name": "main", "image": trainer_image.name, "imagePullPolicy": "Never",
                "command": command,
            }]},
        }  # fmt: skip

    sleep = ["python3", "-c", "import time; time.sleep(600)"]
    core_v1.create_namespaced_pod(namespace, pod("server", sleep, hostname="w0", subdomain="peers"))
    server = eventually(
        lambda: (p := core_v1.read_namespaced_pod("server", namespace)).status.pod_ip and p,
        timeout=120, what="the server pod's IP",
    )  # fmt: skip
    names = [f"w0.peers.{namespace}.svc", "kubernetes.default.svc.cluster.local"]
    core_v1.create_namespaced_pod(namespace, pod("client", ["python3", "-c", DNS_PROBE, *names]))

    def ended() -> kube_client.V1Pod | None:
        found = core_v1.read_namespaced_pod("client", namespace)
        return found if found.status.phase in ("Succeeded", "Failed") else None

    client = eventually(ended, timeout=120, interval=1, what="the client pod to end")
    log = core_v1.read_namespaced_pod_log("client", namespace)
    assert client.status.phase == "Succeeded", log[-3000:]
    answers = json.loads(log.strip().splitlines()[-1])
    assert answers[names[0]] == server.status.pod_ip  # the headless Service's pod record
    assert answers[names[1]] == KUBERNETES_SERVICE_HOST  # the kubernetes Service's ClusterIP
    assert answers["version"] == VERSIONS["KUBERNETES_VERSION"]


def test_fake_accelerators_come_through_the_device_plugin_api(
    real_node, core_v1, namespace, trainer_image: Image
):
    capacity = core_v1.read_node(realnode.NAME).status.capacity
    assert (capacity[config.ASCEND_RESOURCE], capacity[config.GAUDI_RESOURCE]) == ("8", "8")
    pages = HUGEPAGES_BEFORE + realnode.HUGEPAGES_2MI
    assert capacity["hugepages-2Mi"] == f"{2 * pages}Mi"  # what the kernel reserved
    show = (
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
        "if k.startswith(('ASCEND_', 'HABANA_'))}))"
    )

    def pod(name: str, resource: str, count: int) -> dict:
        return {
            "metadata": {"name": name},
            "spec": {**ON_THE_NODE, "restartPolicy": "Never", "containers": [{
                "name": "main", "image": trainer_image.name, "imagePullPolicy": "Never",
                "command": ["python3", "-c", show],
                "resources": {"limits": {resource: str(count)}},
            }]},
        }  # fmt: skip

    # Two Ascend pods in the same second, as the operator creates a job's pods: each must get
    # the annotation of its own devices, whichever the kubelet allocates for first.
    core_v1.create_namespaced_pod(namespace, pod("npu-0", config.ASCEND_RESOURCE, 2))
    core_v1.create_namespaced_pod(namespace, pod("npu-1", config.ASCEND_RESOURCE, 2))
    core_v1.create_namespaced_pod(namespace, pod("hpu", config.GAUDI_RESOURCE, 2))
    core_v1.create_namespaced_pod(namespace, pod("too-many", config.ASCEND_RESOURCE, 9))

    def ended(name: str) -> kube_client.V1Pod | None:
        found = core_v1.read_namespaced_pod(name, namespace)
        return found if found.status.phase in ("Succeeded", "Failed") else None

    envs = {}
    for name in ("npu-0", "npu-1", "hpu"):
        ended_pod = eventually(lambda n=name: ended(n), timeout=120, interval=1, what=name)
        log = core_v1.read_namespaced_pod_log(name, namespace)
        assert ended_pod.status.phase == "Succeeded", log
        envs[name] = json.loads(log.strip().splitlines()[-1])
    npu_ids = {n: envs[n]["ASCEND_VISIBLE_DEVICES"].split(",") for n in ("npu-0", "npu-1")}
    assert all(len(ids) == 2 for ids in npu_ids.values())
    assert set(npu_ids["npu-0"]) | set(npu_ids["npu-1"]) <= {str(i) for i in range(8)}
    assert not set(npu_ids["npu-0"]) & set(npu_ids["npu-1"])
    hpu = envs["hpu"]
    assert hpu["HABANA_VISIBLE_DEVICES"] == hpu["HABANA_VISIBLE_MODULES"]
    assert len(hpu["HABANA_VISIBLE_DEVICES"].split(",")) == 2
    # As MindCluster's plugin does: the devices on the pod, for the rank table.
    for name, ids in npu_ids.items():
        annotation = core_v1.read_namespaced_pod(name, namespace).metadata.annotations[
            "ascend.kubectl.kubernetes.io/ascend-910-configuration"
        ]
        written = json.loads(annotation)
        assert written["pod_name"] == name
        assert written["server_id"] == str(config.REAL_NODE_GATEWAY)
        assert [d["device_id"] for d in written["devices"]] == ids, (name, written)

    def unschedulable() -> str | None:
        conditions = core_v1.read_namespaced_pod("too-many", namespace).status.conditions or []
        found = [c for c in conditions if c.type == "PodScheduled" and c.status == "False"]
        return found[0].message if found else None

    message = eventually(unschedulable, timeout=60, what="the scheduler's reason")
    assert f"Insufficient {config.ASCEND_RESOURCE}" in message, message


NO_HANDLER = "import time; print('up', flush=True); time.sleep(600)"  # never handles SIGTERM


def test_a_trainer_pod_stops_at_once_on_a_sigterm_before_it_has_a_handler(
    real_node, core_v1, namespace, trainer_image: Image
):
    """A container's first process is its PID namespace's init, and an init ignores every
    signal it has no handler for: a trainer deleted in its first second (Python's start-up,
    before its SIGTERM handler) kept running until its grace period ran out (120 s, found when
    the chart's end-to-end test moved here). The operator's pods share their process namespace,
    so the pause container is the init: here a process that never handles SIGTERM, in the
    operator's pod settings, ends at the SIGTERM."""
    rendered = render_pod(JobBuilder("sigterm").defaulted(), 0, trainer_image.name)["spec"]
    grace = rendered["terminationGracePeriodSeconds"]
    core_v1.create_namespaced_pod(namespace, {
        "metadata": {"name": "no-handler"},
        "spec": {
            **ON_THE_NODE, "restartPolicy": "Never",
            "shareProcessNamespace": rendered["shareProcessNamespace"],
            "terminationGracePeriodSeconds": grace,
            "securityContext": rendered["securityContext"],
            "containers": [{
                "name": "main", "image": trainer_image.name, "imagePullPolicy": "Never",
                "command": ["python3", "-c", NO_HANDLER],
            }],
        },
    })  # fmt: skip

    def up() -> bool:
        pod = core_v1.read_namespaced_pod("no-handler", namespace)
        return pod.status.phase == "Running" and "up" in core_v1.read_namespaced_pod_log(
            "no-handler", namespace
        )

    eventually(up, timeout=120, interval=0.5, what="the process to run")
    started = time.monotonic()
    core_v1.delete_namespaced_pod("no-handler", namespace)

    def gone() -> bool:
        try:
            core_v1.read_namespaced_pod("no-handler", namespace)
        except ApiException as err:
            return err.status == 404
        return False

    eventually(gone, timeout=grace + 30, interval=0.5, what="the pod to go")
    took = time.monotonic() - started
    print(f"pod gone {took:.1f} s after its deletion (grace period {grace} s)")
    assert took < grace / 4, f"the SIGTERM was ignored: the pod waited {took:.0f} s"


def kubelet_get(pki: Path, cert: str = "", token: str = "") -> int:
    """The HTTP status of GET /pods on the node's kubelet, with the client certificate `cert`
    (a stem in the cluster's pki) or the bearer `token`."""
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    url = f"https://{config.REAL_NODE_GATEWAY}:{config.KUBELET_PORT}/pods"
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_kubelet_answers_only_cluster_certificates(real_node, cluster, core_v1, namespace):
    """The kubelet serves on the node's address (the API server dials it there for logs and
    exec): no anonymous request and no ServiceAccount token (what a pod holds) gets an answer;
    the API server's kubelet client does."""
    pki = cluster.paths.pki
    core_v1.create_namespaced_service_account(namespace, {"metadata": {"name": "probe"}})
    token = core_v1.create_namespaced_service_account_token(
        "probe", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    assert kubelet_get(pki) == 401
    assert kubelet_get(pki, token=token) == 401
    assert kubelet_get(pki, cert="apiserver-kubelet-client") == 200
    assert listeners(config.KUBELET_PORT) == {str(config.REAL_NODE_GATEWAY)}


def leftovers(paths) -> list[str]:
    """What the node left on the machine: processes, mounts, its bridge and rule, cgroups."""
    node = realnode.NodePaths.of(paths)
    found = []
    for pid in processes.processes_running_from(paths.bin_dir):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        if any(name in cmdline for name in ("containerd", "kubelet", "kube-proxy", "coredns")):
            found.append(f"process {pid} {cmdline}")
    found += [f"mount {m}" for m in realnode.mounts_under(node.root)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {config.REAL_NODE_BRIDGE}"] if config.REAL_NODE_BRIDGE in links else []
    for table in ("filter", "nat", "mangle"):  # the bridge's rule; kube-proxy's, kubelet's chains
        rules = subprocess.run(
            ["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        found += [r for r in rules if config.REAL_NODE_BRIDGE in r or "KUBE-" in r]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods*")]
    found += [str(p) for p in realnode.CONTAINER_LOG_LINKS.glob("*") if p.is_symlink()]
    found += [str(p) for p in realnode.DEVICE_PLUGIN_DIR.glob("*")]
    found += [f"the API relay on {a}" for a in listeners(config.API_SERVER_PORT) - {"127.0.0.1"}
              if ipaddress.ip_address(a) in config.REAL_NODE_POD_CIDR]  # fmt: skip
    if realnode.DEVICE_PLUGIN_DIR.parent.exists() and not KUBELET_DIR_BEFORE:
        found.append(str(realnode.DEVICE_PLUGIN_DIR.parent))
    return found


def test_stopping_the_node_leaves_nothing_behind(real_node, cluster):
    devcluster.stop_node(cluster.paths)
    assert int(realnode.NR_HUGEPAGES.read_text()) == HUGEPAGES_BEFORE
    assert hostkernel.read(hostkernel.KUBELET_TUNABLES) == TUNABLES_BEFORE
    assert leftovers(cluster.paths) == []
    # Images stay in containerd's root, for the next start.
    root = realnode.NodePaths.of(cluster.paths).containerd_root
    assert any(root.glob("io.containerd.content.v1.content/blobs/sha256/*"))


# What Docker changes on a host that the node meets (it loads br_netfilter, turns on IPv4
# forwarding, sets the FORWARD policy to DROP), as a host where Docker never ran has them.
# Docker's own chains stay: they match only docker0.
NO_DOCKER = {"net/bridge/bridge-nf-call-iptables": "0", "net/ipv4/ip_forward": "0"}


def forward_policy() -> str:
    rules = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    return rules.splitlines()[0].split()[-1]  # "-P FORWARD DROP"


@contextmanager
def as_if_docker_never_ran() -> Iterator[None]:
    kernel, policy = hostkernel.read(NO_DOCKER), forward_policy()
    try:
        subprocess.run(["iptables", "-w", "-P", "FORWARD", "ACCEPT"], check=True)
        hostkernel.write(NO_DOCKER)
        yield
    finally:
        hostkernel.write(kernel)
        subprocess.run(["iptables", "-w", "-P", "FORWARD", policy], check=True)


def test_where_docker_never_ran_the_node_works_and_leaves_nothing(
    real_node_session, core_v1, namespace, trainer_image: Image
):
    """The node brings what it needs (its own forwarding rule; the bridge plugin turns IPv4
    forwarding on) and puts the host back as it found it, with or without Docker's changes."""
    paths = real_node_session.paths
    devcluster.stop_node(paths)
    with as_if_docker_never_ran():
        try:
            start_with_images(paths, [trainer_image.name])
            assert_names_resolve_and_the_api_answers(core_v1, namespace, trainer_image)
        finally:
            devcluster.stop_node(paths)
        assert leftovers(paths) == []
        assert hostkernel.read(NO_DOCKER) == NO_DOCKER
        assert forward_policy() == "ACCEPT"
