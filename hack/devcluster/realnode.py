"""A real node in the local cluster (`devcluster up --with node`): containerd (with Debian's
runc) and the kubelet of the pinned Kubernetes version, pods networked by the reference CNI
bridge plugin on a bridge of their own, and images loaded into containerd from the Docker
daemon (`load_images`, as `kind load docker-image` does): nothing is pulled from a registry.
The sandbox image is the pause binary compiled from the Kubernetes module's own source
(build-binaries.sh), packed here into an OCI archive.

This machine's facts, each handled here:
- cgroup v1 (hybrid): the kubelet runs with `failCgroupV1: false` and the cgroupfs driver,
  as containerd's runc does.
- Docker sets the FORWARD policy to DROP and loads br_netfilter: the node's bridge gets its
  own rule for pod-to-pod traffic (bridge.PodBridge), so pods talk
  whether or not Docker is installed.
- The network rule: pods get no default route, only the pod network and the Service range;
  the kubelet serves on the bridge's gateway address (the API server dials it there for logs
  and exec) and its health port on loopback; containerd's streaming server on loopback.

The configuration texts and the components' argv are pure functions of the paths; `prepare`,
the image loading and `teardown` act on the host (devcluster.cluster starts and stops the
processes)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from devcluster import config, hostkernel, pki
from devcluster.bridge import PodBridge
from devcluster.components import Component
from devcluster.config import ClusterPaths
from devcluster.ociarchive import oci_archive

NAME = config.REAL_NODE_NAME
NETWORK = PodBridge(config.REAL_NODE_BRIDGE, config.REAL_NODE_POD_CIDR, config.REAL_NODE_GATEWAY)
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI's images and containers
RUNC = "/usr/sbin/runc"  # Debian's, installed with docker.io
CONTAINER_LOG_LINKS = Path("/var/log/containers")
# The kubelet's device-plugin sockets live here whatever its --root-dir (the API's
# DevicePluginPath); teardown removes what the node put there, and the directories if empty.
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")


@dataclass(frozen=True)
class NodePaths:
    """Everything of the node lives under one directory of the cluster's."""

    root: Path

    @classmethod
    def of(cls, paths: ClusterPaths) -> NodePaths:
        return cls(paths.root / "node")

    @property
    def containerd_root(self) -> Path:  # images and snapshots: kept across down/up
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd-state"

    @property
    def socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def host_kernel(self) -> Path:  # the host's kernel settings from before the node started
        return self.root / "host-kernel.json"


def pause_image(version: str) -> str:
    """The sandbox image's name: built here, so not registry.k8s.io's."""
    return f"densenet.local/pause:{version}"


def containerd_config(node: NodePaths, cni_bin: Path, pause: str) -> str:
    return f"""\
version = 3
root = "{node.containerd_root}"
state = "{node.containerd_state}"
# Off: NRI (its socket would live in /var/run/nri), and the plugin that installs into /opt.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt"]

[grpc]
  address = "{node.socket}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause}"

[plugins.'io.containerd.cri.v1.runtime']
  # Network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # CAP_SYS_RESOURCE is not in this machine's capability bounding set, and lowering a
  # process's oom_score_adj needs it: the sandboxes' -998 would fail runc's init ("can't get
  # final child's PID from pipe"). Scores are kept at or above containerd's own instead.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        SystemdCgroup = false  # cgroupfs, as the kubelet's cgroupDriver
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{node.cni_conf_dir}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
"""


def cni_config() -> str:
    """The bridge plugin on the node's own bridge. Routes: the Service range only (reached
    through the host), no default route, so a pod cannot send anything off the machine."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "densenet-node",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": NETWORK.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{
                            "subnet": str(NETWORK.cidr),
                            "gateway": str(NETWORK.gateway),
                        }]],
                        "routes": [{"dst": str(config.SERVICE_CIDR)}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )  # fmt: skip


def kubelet_config(node: NodePaths, pki: Path) -> str:
    return f"""\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 (hybrid) on this machine: still honoured by 1.36 when asked (KEP-5573).
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{node.socket}
# Served on the bridge's gateway (the node's InternalIP: the API server's logs and exec),
# health on loopback; no read-only port.
address: {NETWORK.gateway}
port: {config.KUBELET_PORT}
healthzBindAddress: 127.0.0.1
healthzPort: {config.KUBELET_HEALTHZ_PORT}
readOnlyPort: 0
tlsCertFile: {pki / "kubelet-serving.crt"}
tlsPrivateKeyFile: {pki / "kubelet-serving.key"}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {pki / "ca.crt"}}}
# Only holders of the cluster CA's client certificates get past authentication (the API
# server's kubelet client, the admin); they may do anything on this test node.
authorization: {{mode: AlwaysAllow}}
clusterDomain: cluster.local
clusterDNS: ["{NETWORK.gateway}"]  # CoreDNS on the gateway (corefile)
# No host resolv.conf in pods: its servers are outside the machine.
resolvConf: ""
podLogsDir: {node.pod_logs}
registerWithTaints:
  - {{key: {config.REAL_NODE_LABEL}, value: "true", effect: NoSchedule}}
# Images are loaded, never pulled: garbage collection must not remove them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}}
serializeImagePulls: false
"""


def kube_proxy_config(paths: ClusterPaths) -> str:
    return f"""\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {{kubeconfig: {paths.root / "kube-proxy.kubeconfig"}}}
hostnameOverride: {NAME}
clusterCIDR: {NETWORK.cidr}
# Loopback only; NodePorts on the node's bridge address only, not on every host address.
healthzBindAddress: 127.0.0.1:{config.KUBE_PROXY_HEALTHZ_PORT}
metricsBindAddress: 127.0.0.1:{config.KUBE_PROXY_METRICS_PORT}
nodePortAddresses: ["{NETWORK.gateway}/32"]
# The host's conntrack limits and timeouts are left as they are.
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""


def corefile(paths: ClusterPaths) -> str:
    """Cluster DNS on the bridge's gateway (the pods' nameserver): names in cluster.local from
    the API server, nothing forwarded (there is no upstream: the host's servers are off the
    machine, so other names do not resolve in pods)."""
    return f"""\
.:53 {{
    bind {NETWORK.gateway}
    errors
    ready 127.0.0.1:{config.COREDNS_READY_PORT}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {paths.root / "coredns.kubeconfig"}
        pods insecure
    }}
    cache 30
}}
"""


# What CoreDNS's kubernetes plugin reads (its docs' ClusterRole `system:coredns`), granted to
# its identity (pki.COREDNS).
COREDNS_ROLE = "densenet:coredns"
# The fake Ascend plugin annotates the pod it allocated for, as MindCluster's does.
DEVICE_PLUGIN_ROLE = "densenet:fake-device-plugin"
DEVICE_PLUGIN_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]
# Fake accelerators the node advertises (hack/deviceplugin, through the kubelet's API).
# 2 MiB pages reserved from the kernel while the node runs (Gaudi pods request them; the
# kubelet reports what the kernel has), given back at teardown.
HUGEPAGES_2MI = 256
NR_HUGEPAGES = hostkernel.PROC_SYS / hostkernel.NR_HUGEPAGES
FAKE_DEVICES = {"ascend": (config.ASCEND_RESOURCE, 8), "gaudi": (config.GAUDI_RESOURCE, 8)}
COREDNS_RULES = [
    {
        "apiGroups": [""],
        "resources": ["services", "pods", "namespaces"],
        "verbs": ["list", "watch"],
    },
    {
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["list", "watch"],
    },
]


@dataclass(frozen=True)
class NodeComponents:
    api_relay: Component
    containerd: Component
    coredns: Component
    kube_proxy: Component
    kubelet: Component
    device_plugins: tuple[Component, ...]  # started once the kubelet is Ready

    @property
    def all(self) -> tuple[Component, ...]:
        return (
            self.api_relay, self.containerd, self.coredns, self.kube_proxy, self.kubelet,
            *self.device_plugins,
        )  # fmt: skip


def components(paths: ClusterPaths) -> NodeComponents:
    """The node's processes, in start order."""
    node = NodePaths.of(paths)
    env = {"PATH": f"{paths.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    # The `kubernetes` Service's endpoint (the API server's advertised address, the bridge's
    # gateway): kube-proxy sends pods' API calls here, relayed to the API server on loopback.
    relay_host, api_port = config.API_SERVER_ADVERTISE, config.API_SERVER_PORT
    loopback = f"127.0.0.1:{api_port}"
    api_relay = Component(
        "api-relay",
        [sys.executable, "-m", "devcluster.apirelay", f"{relay_host}:{api_port}", loopback],
        health_url=f"https://{relay_host}:{api_port}/readyz",
    )
    containerd = Component(
        "containerd",
        [str(paths.bin_dir / "containerd"), f"--config={node.containerd_config}"],
        env=env,
    )
    coredns = Component(
        "coredns",
        [str(paths.bin_dir / "coredns"), "-conf", str(node.root / "Corefile")],
        health_url=f"http://127.0.0.1:{config.COREDNS_READY_PORT}/ready",
    )
    kube_proxy = Component(
        "kube-proxy",
        [str(paths.bin_dir / "kube-proxy"), f"--config={node.root / 'kube-proxy.yaml'}"],
        health_url=f"http://127.0.0.1:{config.KUBE_PROXY_HEALTHZ_PORT}/healthz",
        env=env,
    )
    kubelet = Component(
        "kubelet",
        [
            str(paths.bin_dir / "kubelet"),
            f"--config={node.kubelet_config}",
            f"--kubeconfig={paths.root / 'kubelet.kubeconfig'}",
            f"--root-dir={node.kubelet_dir}",
            f"--hostname-override={NAME}",
            f"--node-ip={NETWORK.gateway}",
            f"--node-labels={config.REAL_NODE_LABEL}=true",
            "--v=1",
        ],
        health_url=f"http://127.0.0.1:{config.KUBELET_HEALTHZ_PORT}/healthz",
        env=env,
    )
    plugins = tuple(
        Component(
            f"device-plugin-{vendor}",
            [
                str(paths.bin_dir / "fake-device-plugin"),
                f"--vendor={vendor}",
                f"--resource={resource}",
                f"--count={count}",
                f"--plugin-dir={DEVICE_PLUGIN_DIR}",
                f"--node={NAME}",
                f"--node-ip={NETWORK.gateway}",
                f"--kubeconfig={paths.root / f'{pki.DEVICE_PLUGIN.stem}.kubeconfig'}",
                f"--pod-resources-socket={node.kubelet_dir / 'pod-resources' / 'kubelet.sock'}",
            ],
        )
        for vendor, (resource, count) in FAKE_DEVICES.items()
    )
    return NodeComponents(api_relay, containerd, coredns, kube_proxy, kubelet, plugins)


# --- the host ---------------------------------------------------------------------------
def grant(api: kube_client.ApiClient, name: str, user: str, rules: list[dict]) -> None:
    """ClusterRole `name` with `rules`, bound to `user` (created, or replaced as planned)."""
    rbac = kube_client.RbacAuthorizationV1Api(api)
    role = {"metadata": {"name": name}, "rules": rules}
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    for create, replace, body in (
        (rbac.create_cluster_role, rbac.replace_cluster_role, role),
        (rbac.create_cluster_role_binding, rbac.replace_cluster_role_binding, binding),
    ):
        try:
            create(body)
        except ApiException as err:
            if err.status != 409:
                raise
            replace(name, body)


def grant_node_identities(api: kube_client.ApiClient) -> None:
    grant(api, COREDNS_ROLE, pki.COREDNS.user, COREDNS_RULES)
    grant(api, DEVICE_PLUGIN_ROLE, pki.DEVICE_PLUGIN.user, DEVICE_PLUGIN_RULES)


def prepare(paths: ClusterPaths, versions: dict[str, str]) -> None:
    """The bridge (the kubelet serves on its address), the configuration files."""
    node = NodePaths.of(paths)
    for directory in (node.root, node.cni_conf_dir, node.kubelet_dir, node.pod_logs):
        directory.mkdir(parents=True, exist_ok=True)
    if NETWORK.exists():
        NETWORK.allow_forwarding()
    else:
        NETWORK.create()
    # What the node changes on the host, recorded for teardown: the pages it reserves now,
    # the tunables the kubelet sets at its start, forwarding (the CNI bridge plugin).
    changed = (hostkernel.NR_HUGEPAGES, hostkernel.IP_FORWARD, *hostkernel.KUBELET_TUNABLES)
    before = hostkernel.record(node.host_kernel, changed)
    NR_HUGEPAGES.write_text(str(int(before[hostkernel.NR_HUGEPAGES]) + HUGEPAGES_2MI))
    cni_bin = config.cache_root() / f"cni-plugins-{versions['CNI_PLUGINS_VERSION']}"
    pause = pause_image(versions["PAUSE_VERSION"])
    node.containerd_config.write_text(containerd_config(node, cni_bin, pause))
    (node.cni_conf_dir / "10-densenet.conflist").write_text(cni_config())
    node.kubelet_config.write_text(kubelet_config(node, paths.pki))
    (node.root / "kube-proxy.yaml").write_text(kube_proxy_config(paths))
    (node.root / "Corefile").write_text(corefile(paths))


def ctr(paths: ClusterPaths, *args: str, stdin: bytes | None = None) -> bytes:
    node = NodePaths.of(paths)
    proc = subprocess.run(
        [str(paths.bin_dir / "ctr"), f"--address={node.socket}", f"--namespace={K8S_NAMESPACE}",
         *args],
        input=stdin, capture_output=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise OSError(f"ctr {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def image_names(paths: ClusterPaths) -> set[str]:
    listed = ctr(paths, "images", "list", "--quiet").decode().split()
    return set(listed)


def load_pause(paths: ClusterPaths, version: str) -> None:
    name = pause_image(version)
    if name not in image_names(paths):
        archive = oci_archive(name, (paths.bin_dir / "pause").read_bytes(), "/pause")
        ctr(paths, "images", "import", "--platform=linux/amd64", "-", stdin=archive)


def load_images(paths: ClusterPaths, images: list[str]) -> list[str]:
    """Copy `images` from the Docker daemon into the node's containerd (`docker save` piped
    into `ctr images import`), unless containerd holds the same image (its ID, the config's
    digest, as Docker's) under that name; returns the ones copied."""
    wanted = [i for i in images if docker_image_id(i) != node_image_id(paths, i)]
    if wanted:
        saved = subprocess.run(["docker", "save", *wanted], capture_output=True, check=False)
        if saved.returncode != 0:
            raise OSError(f"docker save {' '.join(wanted)}: {saved.stderr.decode().strip()}")
        ctr(paths, "images", "import", "--platform=linux/amd64", "-", stdin=saved.stdout)
    return wanted


def docker_image_id(image: str) -> str:
    found = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        raise OSError(f"image {image} is not in the Docker daemon (make images): {found.stderr}")
    return found.stdout.strip()


def node_image_id(paths: ClusterPaths, image: str) -> str | None:
    """The image's ID as the CRI reports it (crictl inspecti), None when the node lacks it."""
    node = NodePaths.of(paths)
    found = subprocess.run(
        [str(paths.bin_dir / "crictl"), f"--image-endpoint=unix://{node.socket}",
         "inspecti", "--output=json", _qualified(image)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        return None
    return json.loads(found.stdout)["status"]["id"]


def _qualified(image: str) -> str:
    """An image reference as containerd stores it (docker.io/library/NAME:TAG)."""
    name = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
    if "/" not in name:
        return f"docker.io/library/{name}"
    first = name.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def remove_pods(paths: ClusterPaths) -> None:
    """Stop and remove every pod sandbox (their containers, shims and network namespaces)
    through the CRI, as a kubelet would; containerd must still run."""
    node = NodePaths.of(paths)
    crictl = paths.bin_dir / "crictl"
    if node.socket.exists() and crictl.exists():
        subprocess.run(
            [str(crictl), f"--runtime-endpoint=unix://{node.socket}", "rmp", "--all", "--force"],
            capture_output=True, check=False, timeout=120,
        )  # fmt: skip


def teardown(paths: ClusterPaths) -> None:
    """After the node's processes have stopped: no mount, cgroup, bridge or rule of the node
    is left (images stay in containerd's root for the next `up`)."""
    node = NodePaths.of(paths)
    kube_proxy = paths.bin_dir / "kube-proxy"
    if kube_proxy.exists():  # its iptables chains (KUBE-SERVICES, ...), as its docs say
        subprocess.run([str(kube_proxy), "--cleanup"], capture_output=True, check=False)
    remove_kubelet_chains()
    hostkernel.restore(node.host_kernel)  # the kubelet's tunables, the reserved pages
    for name in (
        "kubelet.sock",
        "kubelet_internal_checkpoint",
        *(f"densenet-fake-{v}.sock" for v in FAKE_DEVICES),
    ):
        (DEVICE_PLUGIN_DIR / name).unlink(missing_ok=True)
    for directory in (DEVICE_PLUGIN_DIR, DEVICE_PLUGIN_DIR.parent):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty: another kubelet's files stay
    for mount in sorted(mounts_under(node.root), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
    shutil.rmtree(node.containerd_state, ignore_errors=True)
    shutil.rmtree(node.kubelet_dir, ignore_errors=True)
    # The kubelet links each container's log into /var/log/containers (a fixed path).
    for link in CONTAINER_LOG_LINKS.glob("*.log"):
        if link.is_symlink() and os.readlink(link).startswith(f"{node.pod_logs}/"):
            link.unlink()
    with contextlib.suppress(OSError):
        CONTAINER_LOG_LINKS.rmdir()  # only when empty: the kubelet made it
    shutil.rmtree(node.pod_logs, ignore_errors=True)
    remove_kubepods_cgroups()
    NETWORK.remove()


# Chains the kubelet makes in every table of iptables and ip6tables, and never removes: a
# canary it watches for flushes, a hint for kube-proxy's backend, and a firewall that drops
# non-loopback packets to 127.0.0.0/8 (jumped to from INPUT and OUTPUT).
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")


def remove_kubelet_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            listed = subprocess.run(
                [tool, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            jumps = [r for r in listed if r.startswith("-A ") and r.split()[-1] in KUBELET_CHAINS]
            for rule in jumps:
                subprocess.run([tool, "-w", "-t", table, "-D", *rule.split()[1:]], check=False)
            for chain in KUBELET_CHAINS:
                if f"-N {chain}" in listed:
                    subprocess.run([tool, "-w", "-t", table, "-F", chain], check=False)
                    subprocess.run([tool, "-w", "-t", table, "-X", chain], check=False)


def mounts_under(root: Path) -> list[str]:
    prefix = f"{root}/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix) or point == str(root):
            found.append(point)
    return found


def remove_kubepods_cgroups(base: Path = Path("/sys/fs/cgroup")) -> None:
    """The kubelet's cgroups (kubepods, kubepods/burstable, ...) in every hierarchy, deepest
    first; only empty ones can go, which they are once the pods are removed."""
    for top in [*base.glob("*/kubepods*"), *base.glob("kubepods*")]:
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in sorted(os.walk(top), key=lambda e: -len(e[0])):
            with contextlib.suppress(OSError):  # not empty: something still runs in it
                os.rmdir(directory)


def trainer_pid(job: str, rank: int) -> int | None:
    """The trainer process of ``rank`` of ``job`` in the node's containers, seen from the
    host (found by the environment the operator gives it), or None while there is none: for
    the tests and benchmarks that signal it."""
    wanted = {f"DENSENET_JOB_NAME={job}".encode(), f"DENSENET_RANK={rank}".encode()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if wanted <= environ and b"densenet" in cmdline and b"train" in cmdline:
            return int(entry.name)
    return None
