"""Bring the local control plane up, down, and report on it."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from devcluster import components, config, kueue, nodes, pki, processes, realnode, routes
from devcluster.config import ClusterPaths


class ClusterError(Exception):
    """The cluster could not be brought to the requested state; the message says why."""


def read_versions() -> dict[str, str]:
    versions = {}
    for raw_line in config.VERSIONS_FILE.read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            versions[key] = value
    return versions


def control_plane(paths: ClusterPaths) -> list[components.Component]:
    """The control plane's processes, in start order."""
    kwok_version = read_versions()["KWOK_VERSION"]
    return [
        components.etcd(paths),
        components.kube_apiserver(paths),
        components.kube_controller_manager(paths),
        components.kube_scheduler(paths),
        components.kwok(paths, kwok_version),
    ]


def _ssl_context(paths: ClusterPaths, verify: bool) -> ssl.SSLContext:
    if not verify:
        # Controller-manager and scheduler serve /healthz with self-signed loopback certs.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
    ctx.load_cert_chain(str(paths.pki / "admin.crt"), str(paths.pki / "admin.key"))
    return ctx


def is_healthy(paths: ClusterPaths, component: components.Component) -> bool:
    if component.health_url is None:
        return processes.running_pid(paths.pids, component.name) is not None
    verify = component.name == "kube-apiserver"
    ctx = _ssl_context(paths, verify) if component.health_url.startswith("https") else None
    try:
        with urllib.request.urlopen(component.health_url, timeout=2, context=ctx) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _wait(what: str, check: Callable[[], bool], timeout: float, log_hint: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    hint = f"; see {log_hint}" if log_hint else ""
    raise ClusterError(f"{what} not ready after {timeout:.0f}s{hint}")


def _log_tail(log: Path, lines: int = 3) -> str:
    if not log.exists():
        return "(no log)"
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def _wait_started(paths: ClusterPaths, component: components.Component, timeout: float) -> None:
    log = paths.logs / f"{component.name}.log"

    def ready() -> bool:
        if processes.running_pid(paths.pids, component.name) is None:
            raise ClusterError(f"{component.name} exited during start-up: {_log_tail(log)}")
        return is_healthy(paths, component)

    _wait(component.name, ready, timeout, log)


def ensure_binaries() -> None:
    script = config.REPO_ROOT / "hack" / "build-binaries.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"building the control-plane binaries failed: {result.stderr[-2000:]}")


def write_kubeconfigs(paths: ClusterPaths) -> None:
    server = f"https://127.0.0.1:{config.API_SERVER_PORT}"
    paths.kubeconfig.write_text(pki.kubeconfig_yaml(paths.pki, pki.ADMIN, server))
    for client in (pki.CONTROLLER_MANAGER, pki.SCHEDULER):
        components.kubeconfig_for(paths, client.stem).write_text(
            pki.kubeconfig_yaml(paths.pki, client, server)
        )


def core_v1(paths: ClusterPaths) -> kube_client.CoreV1Api:
    api_client = kube_config.new_client_from_config(config_file=str(paths.kubeconfig))
    return kube_client.CoreV1Api(api_client)


def register_fake_nodes(paths: ClusterPaths) -> None:
    core = core_v1(paths)
    for spec in nodes.FAKE_NODES:
        try:
            core.create_node(nodes.node_manifest(spec))
        except ApiException as err:
            if err.status != 409:
                raise
    names = {spec.name for spec in nodes.FAKE_NODES}

    def all_ready() -> bool:
        ready = set()
        for node in core.list_node(label_selector=f"{config.FAKE_NODE_LABEL}=true").items:
            for cond in node.status.conditions or []:
                if cond.type == "Ready" and cond.status == "True":
                    ready.add(node.metadata.name)
        return names <= ready

    _wait("fake nodes", all_ready, 60, paths.logs / "kwok.log")

    def default_service_account() -> bool:
        accounts = core.list_namespaced_service_account("default").items
        return any(sa.metadata.name == "default" for sa in accounts)

    cm_log = paths.logs / "kube-controller-manager.log"
    _wait("default ServiceAccount", default_service_account, 60, cm_log)


def _running(paths: ClusterPaths, comp: components.Component) -> bool:
    return processes.running_pid(paths.pids, comp.name) is not None


def up(
    paths: ClusterPaths,
    log: Callable[[str], None] = print,
    *,
    with_kueue: bool = False,
    with_node: bool = False,
) -> Path:
    """Start the cluster unless it already runs; returns the admin kubeconfig path."""
    ensure_binaries()
    plan = control_plane(paths)
    running = [c for c in plan if _running(paths, c) and is_healthy(paths, c)]
    current = [c for c in running if processes.running_argv(paths.pids, c.name) == c.argv]
    if len(current) == len(plan):
        log("control plane already running")
    else:
        if running:
            # Started by an older checkout (other flags, say no audit log): what the tests
            # rely on is this plan's flags, so start over rather than run with the old ones.
            stale = sorted({c.name for c in running} - {c.name for c in current})
            log(f"restarting the control plane ({', '.join(stale) or 'partly'} not as planned)")
        down(paths, log=lambda _msg: None)
        shutil.rmtree(paths.etcd_data, ignore_errors=True)
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.audit_policy.write_text(components.AUDIT_POLICY)
        pki.ensure_pki(paths.pki)
        write_kubeconfigs(paths)
        if routes.can_manage():
            routes.add_blackholes()
        else:
            log("not root: no blackhole routes for the fake pod and Service ranges")
        for comp in plan:
            started = time.monotonic()
            processes.start(comp, paths.pids, paths.logs)
            _wait_started(paths, comp, timeout=90)
            log(f"started {comp.name} in {time.monotonic() - started:.1f}s")
        register_fake_nodes(paths)
    if with_node:
        start_node(paths, log)
    if with_kueue:
        start_kueue(paths, log)
    return paths.kubeconfig


def start_node(paths: ClusterPaths, log: Callable[[str], None]) -> None:
    """The real node: its bridge and files, the API relay on the bridge, containerd (then the
    pause image), CoreDNS, the kubelet, kube-proxy and the device plugins; returns once the
    Node is Ready with its fake devices."""
    node = realnode.components(paths)
    if all(_running(paths, c) for c in node.all) and is_healthy(paths, node.kubelet):
        log(f"node {realnode.NAME} already running")
        return
    started = time.monotonic()
    versions = read_versions()
    pki.ensure_pki(paths.pki)  # the node's certificates, on a cluster started without them
    server = f"https://127.0.0.1:{config.API_SERVER_PORT}"
    for client in (pki.KUBELET, pki.KUBE_PROXY, pki.COREDNS, pki.DEVICE_PLUGIN):
        (paths.root / f"{client.stem}.kubeconfig").write_text(
            pki.kubeconfig_yaml(paths.pki, client, server)
        )
    realnode.prepare(paths, versions)
    realnode.grant_node_identities(
        kube_config.new_client_from_config(config_file=str(paths.kubeconfig))
    )
    _ensure_started(paths, node.api_relay)  # on the bridge prepare() made
    _launch(paths, node.containerd)
    socket = realnode.NodePaths.of(paths).socket
    log_file = paths.logs / "containerd.log"

    def serving() -> bool:
        if not _running(paths, node.containerd):
            raise ClusterError(f"containerd exited during start-up: {_log_tail(log_file)}")
        try:
            realnode.ctr(paths, "version")
        except OSError:
            return False
        return socket.exists()

    _wait("containerd", serving, 60, log_file)
    realnode.load_pause(paths, versions["PAUSE_VERSION"])
    _ensure_started(paths, node.coredns)
    _launch(paths, node.kubelet)
    _wait_ready_node(paths, realnode.NAME, node.kubelet.name)
    # After the Node exists: kube-proxy's /healthz fails until it can read its own Node.
    _ensure_started(paths, node.kube_proxy)
    for plugin in node.device_plugins:
        _launch(paths, plugin)
    _wait_devices(paths)
    log(f"started node {realnode.NAME} in {time.monotonic() - started:.1f}s")


def _launch(paths: ClusterPaths, component: components.Component) -> None:
    """Start `component` unless it runs already."""
    if not _running(paths, component):
        processes.start(component, paths.pids, paths.logs)


def _ensure_started(paths: ClusterPaths, component: components.Component) -> None:
    """Start `component` unless it runs, then wait until it is healthy."""
    _launch(paths, component)
    _wait_started(paths, component, timeout=60)


def _wait_devices(paths: ClusterPaths) -> None:
    """Until the Node's capacity shows every fake device the plugins advertise."""
    core = core_v1(paths)
    wanted = {resource: str(count) for resource, count in realnode.FAKE_DEVICES.values()}

    def advertised() -> bool:
        capacity = core.read_node(realnode.NAME).status.capacity or {}
        return all(capacity.get(k) == v for k, v in wanted.items())

    _wait("the fake device plugins' resources", advertised, 60, paths.logs / "kubelet.log")


def stop_node(paths: ClusterPaths) -> None:
    """The device plugins and the kubelet first (it would restart what we remove), then every
    pod through the CRI, containerd, kube-proxy and CoreDNS, and what is left on the host
    (mounts, cgroups, the bridge, the rules, hugepages)."""
    node = realnode.components(paths)
    for plugin in node.device_plugins:
        processes.stop(paths.pids, plugin.name, grace_seconds=10)
    processes.stop(paths.pids, node.kubelet.name, grace_seconds=30)
    if _running(paths, node.containerd):
        realnode.remove_pods(paths)
    for comp in (node.containerd, node.kube_proxy, node.coredns, node.api_relay):
        processes.stop(paths.pids, comp.name, grace_seconds=30)
    realnode.teardown(paths)
    api_server = components.kube_apiserver(paths)
    if is_healthy(paths, api_server):  # its Node object too, or it would linger NotReady
        try:
            core_v1(paths).delete_node(realnode.NAME)
        except ApiException as err:
            if err.status != 404:
                raise ClusterError(f"deleting Node {realnode.NAME}: {err.reason}") from err


def start_kueue(paths: ClusterPaths, log: Callable[[str], None]) -> None:
    """Kueue's CRDs, then its manager, then its webhooks (which fail closed once registered)."""
    comp = kueue.component(paths)
    if _running(paths, comp) and is_healthy(paths, comp):
        log("kueue already running")
        return
    started = time.monotonic()
    staged = kueue.manifests_dir(read_versions()["KUEUE_VERSION"])
    if not (staged / "webhooks.yaml").exists():
        raise ClusterError(f"Kueue's manifests are not staged in {staged}: run make binaries")
    ca_bundle = paths.ca_cert.read_bytes()
    api = kube_config.new_client_from_config(config_file=str(paths.kubeconfig))
    pki.ensure_pki(paths.pki)  # the webhook certificate, on a cluster started without it
    kueue.prepare(paths)
    kueue.install(api, staged, ca_bundle)
    ext = kube_client.ApiextensionsV1Api(api)

    def established() -> bool:
        crds = ext.list_custom_resource_definition().items
        ours = [c for c in crds if c.spec.group == kueue.KUEUE_GROUP]
        return bool(ours) and all(
            any(k.type == "Established" and k.status == "True" for k in c.status.conditions or [])
            for c in ours
        )

    _wait("Kueue's CRDs", established, 60, None)
    processes.start(comp, paths.pids, paths.logs)
    _wait_started(paths, comp, timeout=90)
    kueue.register_webhooks(api, staged, ca_bundle)
    log(f"started kueue in {time.monotonic() - started:.1f}s")


def stop_kueue(paths: ClusterPaths) -> None:
    """Unregister Kueue's webhooks (they fail closed), stop its manager and release the pods
    it held; its CRDs and objects stay until `down`."""
    api = kube_config.new_client_from_config(config_file=str(paths.kubeconfig))
    kueue.unregister_webhooks(api)
    processes.stop(paths.pids, kueue.NAME, grace_seconds=15)
    kueue.release(api)


def _wait_ready_node(paths: ClusterPaths, name: str, process: str) -> None:
    """Until Node `name` is Ready, as long as its `process` runs."""
    core = core_v1(paths)
    log = paths.logs / f"{process}.log"

    def ready() -> bool:
        if processes.running_pid(paths.pids, process) is None:
            raise ClusterError(f"{process} of node {name} exited during start-up: {_log_tail(log)}")
        node = core.list_node(field_selector=f"metadata.name={name}").items
        return bool(node) and any(
            c.type == "Ready" and c.status == "True" for c in node[0].status.conditions or []
        )

    _wait(f"node {name}", ready, 90, log)


def known_process_names(paths: ClusterPaths) -> list[str]:
    """Every process this cluster may have started: the control plane's plus any other pid
    file (Kueue, or what an older checkout started)."""
    names = [c.name for c in control_plane(paths)]
    if paths.pids.exists():
        names += sorted(p.stem for p in paths.pids.glob("*.pid") if p.stem not in names)
    return names


def down(paths: ClusterPaths, log: Callable[[str], None] = print) -> None:
    """Stop every process we started: the node, then the others (Kueue, an older checkout's),
    then the control plane in reverse start order."""
    node_processes = {c.name for c in realnode.components(paths).all}
    if any(processes.running_pid(paths.pids, n) for n in node_processes) or (
        realnode.NodePaths.of(paths).containerd_state.exists()
    ):
        stop_node(paths)
        log(f"stopped node {realnode.NAME}")
    names = known_process_names(paths)
    plane = {c.name for c in control_plane(paths)}
    others = [n for n in names if n not in plane]
    for name in [*others, *reversed([n for n in names if n in plane])]:
        grace = 60.0 if name in others else 15.0
        if processes.stop(paths.pids, name, grace_seconds=grace):
            log(f"stopped {name}")
    shutil.rmtree(paths.etcd_data, ignore_errors=True)
    if routes.can_manage():
        routes.remove_blackholes()


def status(paths: ClusterPaths) -> list[tuple[str, int | None, bool]]:
    """(name, pid, healthy) for each process of the cluster."""
    plan = control_plane(paths)
    rows = []
    for comp in plan:
        pid = processes.running_pid(paths.pids, comp.name)
        rows.append((comp.name, pid, pid is not None and is_healthy(paths, comp)))
    for name in known_process_names(paths)[len(plan) :]:
        pid = processes.running_pid(paths.pids, name)
        rows.append((name, pid, pid is not None))
    return rows
