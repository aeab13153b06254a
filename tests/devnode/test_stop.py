"""Stopping a runner stops every pod it started and removes every namespace, link, mount, file
and process it created. Uses a second, short-lived runner on the spare slice of the pod
network, so the shared runner keeps serving the other tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from devcluster.config import RUNNER_BRIDGE, RUNNER_SPARE_BRIDGE, RUNNER_SPARE_POD_CIDR
from devnode.netns import ETC_NETNS, own_netns
from tests.devnode.support import create, pids_with, python_pod, runner_node, wait_phase
from tests.polling import eventually

pytestmark = pytest.mark.cluster

TAINT_KEY = "densenet.dev/stop-test"
SLEEPER = """
import signal, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", open(sys.argv[3] + "/k").read(), flush=True)
while True:
    time.sleep(0.1)
"""


def _links(prefix: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show"], check=False, capture_output=True, text=True
    ).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(prefix)]


def _node_ready(core, name: str) -> bool:
    try:
        node = core.read_node(name)
    except ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def test_stopping_the_runner_leaves_no_process_namespace_link_or_mount(
    cluster, namespace, core_v1, tmp_path
):
    runner_node(cluster)
    node = f"devnode-stoptest-{uuid.uuid4().hex[:6]}"
    state = tmp_path / "state"
    mount_root = Path(f"/opt/devnode-stoptest-{uuid.uuid4().hex[:6]}")
    marker = f"stoptest-{uuid.uuid4().hex}"
    log = (tmp_path / "runner.log").open("w")
    runner = subprocess.Popen(
        [
            sys.executable, "-m", "devnode", "run",
            "--kubeconfig", str(cluster.kubeconfig),
            "--node-name", node,
            "--state-dir", str(state),
            "--bridge", RUNNER_SPARE_BRIDGE,
            "--pod-cidr", str(RUNNER_SPARE_POD_CIDR),
            "--taint", f"{TAINT_KEY}=true:NoSchedule",
            "--shutdown-grace", "3",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        eventually(lambda: _node_ready(core_v1, node), 60, what=f"node {node} Ready")
        core_v1.create_namespaced_config_map(
            namespace, {"metadata": {"name": "c"}, "data": {"k": "v"}}
        )
        for kind in ("stubborn", "plain"):
            pod = python_pod(
                kind,
                SLEEPER,
                nodeName=node,
                nodeSelector=None,
                tolerations=[{"key": TAINT_KEY, "operator": "Exists"}],
                volumes=[{"name": "c", "configMap": {"name": "c"}}],
                container={
                    "args": [marker, kind, str(mount_root / "cfg")],
                    "volumeMounts": [{"name": "c", "mountPath": str(mount_root / "cfg")}],
                },
            )
            create(core_v1, namespace, pod)
        for kind in ("stubborn", "plain"):
            wait_phase(core_v1, namespace, kind, ("Running",))
        prefix = f"{RUNNER_SPARE_BRIDGE}-"
        # What exists while the pods run, so the checks after the stop can fail.
        pids = eventually(lambda: len(pids_with(marker)) == 2 and pids_with(marker), 20)
        assert len(own_netns(prefix)) == 2
        assert _links(RUNNER_SPARE_BRIDGE)
        assert any(str(mount_root) in Path(f"/proc/{p}/mountinfo").read_text() for p in pids)
        assert mount_root.is_dir()

        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=45) == 0

        assert pids_with(marker) == []
        assert own_netns(prefix) == []
        assert _links(RUNNER_SPARE_BRIDGE) == []
        assert not ETC_NETNS.exists() or not [
            e for e in ETC_NETNS.iterdir() if e.name.startswith(prefix)
        ]
        mountinfo = Path("/proc/self/mountinfo").read_text()
        assert str(state) not in mountinfo and f"/run/netns/{prefix}" not in mountinfo
        assert not mount_root.exists()
        assert not (state / "pods").exists()
        assert not Path(f"/run/devnode-{RUNNER_SPARE_BRIDGE}.lock").exists()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for kind in ("stubborn", "plain"):
            with contextlib.suppress(ApiException):
                core_v1.delete_namespaced_pod(kind, namespace, grace_period_seconds=0)
        with contextlib.suppress(ApiException):
            core_v1.delete_node(node)
        log.close()


def test_a_second_runner_on_the_same_bridge_refuses_to_start(cluster, core_v1, tmp_path):
    node = runner_node(cluster)
    result = subprocess.run(
        [
            sys.executable, "-m", "devnode", "run",
            "--kubeconfig", str(cluster.kubeconfig),
            "--node-name", "devnode-duplicate",
            "--state-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "another runner" in lines[0], lines
    assert _links(RUNNER_BRIDGE) and _node_ready(core_v1, node)
    with pytest.raises(ApiException) as err:
        core_v1.read_node("devnode-duplicate")
    assert err.value.status == 404
