"""Pods on the node runner really run: network and names, volumes, in-cluster API access,
environment, exit codes and restarts, deletion (real processes, real API server)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client as kube_client

from devcluster.config import (
    API_SERVER_POD_HOST,
    API_SERVER_PORT,
    RUNNER_NODE_LABEL,
    RUNNER_POD_CIDR,
)
from tests.devnode.support import (
    create,
    pids_with,
    pod_log,
    python_pod,
    runner_node,
    wait_gone,
    wait_log,
    wait_phase,
)
from tests.polling import eventually
from tests.rbac import grant_pod_reader

pytestmark = pytest.mark.cluster

SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen(1)
s.settimeout(90)
conn, peer = s.accept()
print("PEER", peer[0])
print("LOCAL", conn.getsockname()[0])
conn.sendall(b"hello-from-server")
conn.close()
"""

CLIENT = """
import os, socket, time
ns = os.environ["NS"]
names = [f"server.svc.{ns}.svc", "server.svc", f"svc.{ns}.svc", "svc"]
deadline = time.time() + 60
while True:
    try:
        addrs = {n: socket.gethostbyname(n) for n in names}
        conn = socket.create_connection((names[0], 7000), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
print("RESOLVED", " ".join(f"{n}={a}" for n, a in addrs.items()))
print("LOCAL", conn.getsockname()[0])
print("REMOTE", conn.getpeername()[0])
print("GOT", conn.recv(100).decode())
"""


def _fields(log: str) -> dict[str, str]:
    return {
        line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in log.splitlines() if " " in line
    }


def test_two_pods_talk_over_tcp_by_headless_service_names(cluster, namespace, core_v1):
    runner_node(cluster)
    state = cluster.paths.root / cluster.runner_node
    core_v1.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "svc"},
            "spec": {"clusterIP": "None", "selector": {"app": "pair"}, "ports": [{"port": 7000}]},
        },
    )
    ns_env = {
        "env": [{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    }
    # The client starts first and keeps failing to resolve the server's names until the
    # runner rewrites its /etc/hosts for the new pod.
    for name, script in (("client", CLIENT), ("server", SERVER)):
        create(
            core_v1,
            namespace,
            python_pod(
                name,
                script,
                labels={"app": "pair"},
                hostname=name,
                subdomain="svc",
                container=ns_env,
            ),
        )
        wait_phase(core_v1, namespace, name, ("Running", "Succeeded", "Failed"))
    server = wait_phase(core_v1, namespace, "server", ("Succeeded", "Failed"))
    client = wait_phase(core_v1, namespace, "client", ("Succeeded", "Failed"))
    server_log, client_log = (pod_log(state, namespace, n) for n in ("server", "client"))
    assert (server.status.phase, client.status.phase) == ("Succeeded", "Succeeded"), (
        server_log + client_log
    )
    server_ip, client_ip = server.status.pod_ip, client.status.pod_ip
    assert {ipaddress.ip_address(ip) in RUNNER_POD_CIDR for ip in (server_ip, client_ip)} == {True}
    assert server_ip != client_ip
    got, sent = _fields(client_log), _fields(server_log)
    assert (
        got["LOCAL"] == client_ip
        and got["REMOTE"] == server_ip
        and got["GOT"] == "hello-from-server"
    )
    assert sent["PEER"] == client_ip and sent["LOCAL"] == server_ip
    resolved = dict(pair.split("=") for pair in got["RESOLVED"].split())
    assert resolved[f"server.svc.{namespace}.svc"] == resolved["server.svc"] == server_ip
    assert {resolved[f"svc.{namespace}.svc"], resolved["svc"]} <= {server_ip, client_ip}
    assert server.status.host_ip == API_SERVER_POD_HOST


CONFIG_READER = """
import sys, time
nested = sys.argv[1] + "/cfg/greeting"  # a configMap mounted inside an emptyDir
print("NESTED", open(nested).read(), flush=True)
deadline, last = time.time() + 60, None
while time.time() < deadline:
    value = open("/etc/app/greeting").read()
    if value != last:
        print("VALUE", value, flush=True)
        last = value
    if value == "updated":
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"""


def test_config_map_volume_is_mounted_and_follows_updates(cluster, namespace, core_v1):
    state = cluster.paths.root / runner_node(cluster)
    core_v1.create_namespaced_config_map(
        namespace, {"metadata": {"name": "app"}, "data": {"greeting": "hello"}}
    )
    scratch = Path("/var/lib") / namespace  # made on the host for the mount, removed after
    mounts = [
        {"name": "cfg", "mountPath": "/etc/app"},
        {"name": "cfg", "mountPath": f"{scratch}/cfg"},
        {"name": "scratch", "mountPath": str(scratch)},
    ]
    pod = python_pod(
        "reader",
        CONFIG_READER,
        container={"volumeMounts": mounts, "args": [str(scratch)]},
        volumes=[
            {"name": "cfg", "configMap": {"name": "app"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    )
    create(core_v1, namespace, pod)
    wait_log(state, namespace, "reader", "VALUE hello")
    assert "NESTED hello" in pod_log(state, namespace, "reader")
    core_v1.patch_namespaced_config_map("app", namespace, {"data": {"greeting": "updated"}})
    done = wait_phase(core_v1, namespace, "reader", ("Succeeded", "Failed"), timeout=30)
    assert done.status.phase == "Succeeded", pod_log(state, namespace, "reader")
    assert "VALUE updated" in pod_log(state, namespace, "reader")
    eventually(lambda: not scratch.exists(), 10, what=f"{scratch} removed from the host")


IN_CLUSTER = """
import os
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
config.load_incluster_config()
print("HOST", os.environ["KUBERNETES_SERVICE_HOST"] + ":" + os.environ["KUBERNETES_SERVICE_PORT"])
ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
v1 = client.CoreV1Api()
print("OWN", " ".join(p.metadata.name for p in v1.list_namespaced_pod(ns).items))
try:
    v1.list_namespaced_pod("default")
    print("OTHER allowed")
except ApiException as exc:
    print("OTHER", exc.status)
"""


def test_pod_uses_its_service_account_through_in_cluster_config(
    cluster, namespace, core_v1, api_client
):
    state = cluster.paths.root / runner_node(cluster)
    grant_pod_reader(api_client, namespace, "lister")
    # The operator image maps to the project's .venv, which has the kubernetes client.
    pod = python_pod(
        "lister", IN_CLUSTER, image="densenet-operator:dev", serviceAccountName="lister"
    )
    create(core_v1, namespace, pod)
    done = wait_phase(core_v1, namespace, "lister", ("Succeeded", "Failed"))
    fields = _fields(pod_log(state, namespace, "lister"))
    assert done.status.phase == "Succeeded", fields
    assert fields["HOST"] == f"{API_SERVER_POD_HOST}:{API_SERVER_PORT}"
    assert "lister" in fields["OWN"].split()
    assert fields["OTHER"] == "403"


def test_downward_api_env_carries_the_pods_own_name_and_ip(cluster, namespace, core_v1):
    state = cluster.paths.root / runner_node(cluster)
    env = [
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "ADDR", "value": "$(MY_IP):2222"},
    ]
    script = (
        "import os; e = os.environ; "
        "print('ENV', e['MY_NAME'], e['MY_IP'], e['MY_NODE'], e['ADDR'], os.getcwd())"
    )
    create(
        core_v1,
        namespace,
        python_pod("downward", script, container={"env": env, "workingDir": "/tmp"}),
    )
    done = wait_phase(core_v1, namespace, "downward", ("Succeeded", "Failed"))
    name, ip, node, addr, cwd = _fields(pod_log(state, namespace, "downward"))["ENV"].split()
    assert (name, ip, node) == ("downward", done.status.pod_ip, cluster.runner_node)
    assert addr == f"{done.status.pod_ip}:2222" and cwd == "/tmp"


RETRY = """
import os, sys
marker = "/scratch/ran-once"
if os.path.exists(marker):
    print("second run")
    sys.exit(0)
open(marker, "w").close()
print("first run")
sys.exit(3)
"""


def test_exit_code_fails_the_pod_and_on_failure_restarts_it(cluster, namespace, core_v1):
    state = cluster.paths.root / runner_node(cluster)
    create(core_v1, namespace, python_pod("fails", "import sys; sys.exit(3)"))
    create(
        core_v1,
        namespace,
        python_pod(
            "retries",
            RETRY,
            restartPolicy="OnFailure",
            container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
            volumes=[{"name": "scratch", "emptyDir": {}}],
        ),
    )
    failed = wait_phase(core_v1, namespace, "fails", ("Succeeded", "Failed"))
    assert failed.status.phase == "Failed"
    term = failed.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (3, "Error")

    retried = wait_phase(core_v1, namespace, "retries", ("Succeeded", "Failed"))
    status = retried.status.container_statuses[0]
    assert retried.status.phase == "Succeeded"
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 3
    assert (status.state.terminated.exit_code, status.state.terminated.reason) == (0, "Completed")
    assert pod_log(state, namespace, "retries", previous=True).strip() == "first run"
    assert pod_log(state, namespace, "retries").strip() == "second run"
    events = core_v1.list_namespaced_event(
        namespace, field_selector="involvedObject.name=retries"
    ).items
    assert {"Started", "BackOff"} <= {e.reason for e in events}
    # `kubectl logs [-p]` goes through the API server to the runner's log endpoint.
    assert core_v1.read_namespaced_pod_log("retries", namespace) == "second run\n"
    assert core_v1.read_namespaced_pod_log("retries", namespace, previous=True) == "first run\n"


STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, lambda *_: print("got SIGTERM, ignoring it", flush=True))
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def test_deleting_a_pod_that_ignores_sigterm_kills_it_after_the_grace_period(
    cluster, namespace, core_v1
):
    state = cluster.paths.root / runner_node(cluster)
    marker = f"stubborn-{uuid.uuid4().hex}"
    pod = python_pod(
        "stubborn", STUBBORN, terminationGracePeriodSeconds=3, container={"args": [marker]}
    )
    create(core_v1, namespace, pod)
    wait_log(state, namespace, "stubborn", "ready")
    assert len(pids_with(marker)) == 1
    start = time.monotonic()
    core_v1.delete_namespaced_pod("stubborn", namespace)
    eventually(lambda: not pids_with(marker), 20, interval=0.1, what="the process to die")
    killed_after = time.monotonic() - start
    assert 2.5 <= killed_after <= 8, killed_after
    assert "got SIGTERM, ignoring it" in pod_log(state, namespace, "stubborn")
    wait_gone(core_v1, namespace, "stubborn", timeout=10)


VOLUME_READER = """
import json, os
out = {
    "init": open("/shared/from-init").read(),
    "labels": open("/podinfo/labels").read(),
    "secret": open("/secret/password").read(),
    "host": open("/host/note").read(),
}
print("VOLUMES", json.dumps(out))
"""


def test_init_container_then_secret_downward_and_host_path_volumes(
    cluster, namespace, core_v1, tmp_path
):
    state = cluster.paths.root / runner_node(cluster)
    core_v1.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}}
    )
    (tmp_path / "note").write_text("from the host")
    init = {
        "name": "prepare",
        "image": "python:3.11-slim",
        "command": ["sh", "-c", "echo -n prepared > /shared/from-init"],
        "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
    }
    mounts = [
        {"name": "shared", "mountPath": "/shared"},
        {"name": "podinfo", "mountPath": "/podinfo"},
        {"name": "secret", "mountPath": "/secret"},
        {"name": "host", "mountPath": "/host", "readOnly": True},
    ]
    volumes = [
        {"name": "shared", "emptyDir": {}},
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
        {"name": "secret", "secret": {"secretName": "creds"}},
        {"name": "host", "hostPath": {"path": str(tmp_path), "type": "Directory"}},
    ]
    pod = python_pod(
        "volumes",
        VOLUME_READER,
        labels={"team": "densenet"},
        initContainers=[init],
        volumes=volumes,
        container={"volumeMounts": mounts},
    )
    create(core_v1, namespace, pod)
    done = wait_phase(core_v1, namespace, "volumes", ("Succeeded", "Failed"))
    log = pod_log(state, namespace, "volumes")
    assert done.status.phase == "Succeeded", log
    init_state = done.status.init_container_statuses[0].state.terminated
    assert (init_state.exit_code, init_state.reason) == (0, "Completed")
    assert {c.type: c.status for c in done.status.conditions}["Initialized"] == "True"
    got = json.loads(_fields(log)["VOLUMES"])
    assert got == {
        "init": "prepared",
        "labels": 'team="densenet"',
        "secret": "s3cret",
        "host": "from the host",
    }


def test_runner_node_has_its_label_capacity_and_a_fresh_lease(cluster, core_v1, api_client):
    node = core_v1.read_node(runner_node(cluster))
    assert node.metadata.labels[RUNNER_NODE_LABEL] == "true"
    assert set(node.status.capacity) == {"cpu", "memory", "pods"}  # no accelerators here
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    coordination = kube_client.CoordinationV1Api(api_client)

    def renewed_recently():
        lease = coordination.read_namespaced_lease(cluster.runner_node, "kube-node-lease")
        age = dt.datetime.now(dt.UTC) - lease.spec.renew_time
        return lease.spec.holder_identity == cluster.runner_node and age.total_seconds() < 15

    eventually(renewed_recently, 20, what="a lease renewed in the last 15 s")


PROBED = """
import http.server, os, socket
first = not os.path.exists("/state/ran")
open("/state/ran", "a").close()

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if first else 200)
        self.end_headers()

    def log_message(self, *_):
        pass

server = http.server.HTTPServer(("0.0.0.0", 7002), Health)
if not first:  # only the second run ever becomes ready
    ready = socket.socket()
    ready.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ready.bind(("0.0.0.0", 7001))
    ready.listen()
print("run", "first" if first else "second", flush=True)
server.serve_forever()
"""


def test_readiness_gates_ready_and_a_failing_liveness_probe_restarts(cluster, namespace, core_v1):
    runner_node(cluster)
    container = {
        "ports": [{"name": "health", "containerPort": 7002}],
        "readinessProbe": {"tcpSocket": {"port": 7001}, "periodSeconds": 1},
        "livenessProbe": {
            "httpGet": {"port": "health", "path": "/healthz"},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
        "volumeMounts": [{"name": "state", "mountPath": "/state"}],
    }
    pod = python_pod(
        "probed",
        PROBED,
        restartPolicy="Always",
        container=container,
        volumes=[{"name": "state", "emptyDir": {}}],
    )
    create(core_v1, namespace, pod)
    first = wait_phase(core_v1, namespace, "probed", ("Running",))
    assert first.status.container_statuses[0].ready is False
    assert {c.type: c.status for c in first.status.conditions}["Ready"] == "False"

    def ready_after_restart():
        p = core_v1.read_namespaced_pod("probed", namespace)
        status = p.status.container_statuses[0]
        return status.ready and status.restart_count == 1 and p

    ready = eventually(ready_after_restart, 30, what="Ready after one liveness restart")
    assert {c.type: c.status for c in ready.status.conditions}["Ready"] == "True"
    events = core_v1.list_namespaced_event(
        namespace, field_selector="involvedObject.name=probed"
    ).items
    assert "Unhealthy" in {e.reason for e in events}


def test_a_volume_over_the_images_directory_does_not_hide_the_image(cluster, namespace, core_v1):
    """An emptyDir at /tmp (or wherever the checkout lives) must not hide the venv and sources
    that stand in for the image's files, as it would not hide /usr in a real image."""
    from devcluster.config import REPO_ROOT

    state = cluster.paths.root / runner_node(cluster)
    mount = {"name": "scratch", "mountPath": str(REPO_ROOT.parent)}
    pod = python_pod(
        "covered",
        "import densenet_operator; print('imported', densenet_operator.__version__)",
        image="densenet-operator:test",
        container={"volumeMounts": [mount]},
        volumes=[{"name": "scratch", "emptyDir": {}}],
    )
    create(core_v1, namespace, pod)
    done = wait_phase(core_v1, namespace, "covered", ("Succeeded", "Failed"))
    log = pod_log(state, namespace, "covered")
    assert done.status.phase == "Succeeded", log
    assert log.strip() == "imported 0.1.0", log


def test_a_volume_over_the_runners_state_dir_does_not_hide_the_other_volumes(
    cluster, namespace, core_v1
):
    """The runner keeps volume sources under its state dir; an emptyDir mounted over that path
    (the chart's /tmp when the cache lives under /tmp) must not hide the volumes bound after
    it: a configMap mounted deeper still reads."""
    state = cluster.paths.root / runner_node(cluster)
    core_v1.create_namespaced_config_map(
        namespace, {"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}}
    )
    deeper = "/cfg" + "/d" * str(cluster.paths.root).count("/")
    pod = python_pod(
        "hidden",
        f"print('read', open('{deeper}/greeting').read())",
        container={
            "volumeMounts": [
                {"name": "scratch", "mountPath": str(cluster.paths.root)},
                {"name": "cfg", "mountPath": deeper},
            ]
        },
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
        ],
    )
    create(core_v1, namespace, pod)
    done = wait_phase(core_v1, namespace, "hidden", ("Succeeded", "Failed"))
    log = pod_log(state, namespace, "hidden")
    assert done.status.phase == "Succeeded", log
    assert log.strip() == "read hello", log
