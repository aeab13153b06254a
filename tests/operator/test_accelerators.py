"""Ascend and Gaudi jobs on the real node (containerd and the kubelet) from `densenet-trainer:dev`:
the fake accelerators come through the kubelet's device-plugin API (hack/deviceplugin), the
Ascend plugin annotates each pod as MindCluster's does, the operator completes the rank table,
densenet-launch starts one trainer per device, and each trainer stops with the one-line "no such
device here" error (exit 5): the job fails at once instead of restarting. What no machine here
can show (a real NPU or Gaudi card) starts where these tests stop."""

from __future__ import annotations

import json
import re

import pytest

from devcluster import config
from tests.images.conftest import Image, trainer_image  # noqa: F401 - the image the node runs
from tests.operator.harness import Jobs
from tests.operator.jobs import JobBuilder
from tests.real_node import NODE_SELECTOR, TOLERATION, real_node  # noqa: F401 - fixture

pytestmark = pytest.mark.cluster

SERVER = str(config.REAL_NODE_GATEWAY)  # the node's InternalIP: the rank table's server id
LAUNCH_SUMMARY = re.compile(r"^densenet-launch: exit (\d+) \(rank=status: ([0-9= ]+)\)$", re.M)


def on_the_node(name: str, kind: str, per_pod: int, image: str) -> JobBuilder:
    """A 2-pod job of `kind` on the real node, light enough for its 2 CPUs."""
    return (
        JobBuilder(name)
        .accelerator(kind, per_pod)
        .replicas(2)
        .set("spec.image", image)
        .set("spec.scheduling", {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]})
        .set("spec.template.resources", {"requests": {"cpu": "100m", "memory": "512Mi"}})
        .set("spec.metrics.enabled", False)
    )


def launched_ranks(log: str) -> dict[int, int]:
    """Global rank -> exit status, from densenet-launch's summary line in a pod's log: the
    processes it started, one per device."""
    found = LAUNCH_SUMMARY.findall(log)
    assert len(found) == 1, log
    return {int(r): int(c) for r, c in (pair.split("=") for pair in found[0][1].split())}


def assert_one_process_per_device(jobs: Jobs, name: str, per_pod: int, package: str) -> list[str]:
    """Each pod's log (read through the API server from the kubelet, as `kubectl logs` does)
    shows the launcher started one trainer per device with consecutive global ranks, and a
    trainer that stopped with the one-line "no such device here" error (exit 5). Returns those
    error lines."""
    errors = []
    for pod in sorted(jobs.pods(name), key=lambda p: p.metadata.name):
        assert pod.spec.node_name == config.REAL_NODE_NAME
        index = int(pod.metadata.labels["densenet.dev/replica-index"])
        log = jobs.core.read_namespaced_pod_log(pod.metadata.name, jobs.namespace)
        ranks = launched_ranks(log)
        assert sorted(ranks) == list(range(index * per_pod, (index + 1) * per_pod)), log
        assert 5 in ranks.values(), log
        found = [line for line in log.splitlines() if "densenet-train: error:" in line]
        assert found and all(package in line for line in found), log
        errors += found
    return errors


@pytest.mark.usefixtures("real_node")
def test_ascend_rank_table_from_the_device_plugins_annotations(
    jobs,
    operator,
    trainer_image: Image,  # noqa: F811
):
    operator()
    jobs.create(on_the_node("npu", "ascend", 2, trainer_image.name).build())
    status = jobs.wait_phase("npu", "Failed", timeout=180)
    assert jobs.condition("npu", "Failed")["reason"] == "MissingDevice"
    assert status["restarts"] == 0
    assert status["rankTable"] == {"state": "completed", "version": "1.0", "reason": ""}
    table = jobs.core.read_namespaced_config_map("rings-config-npu", jobs.namespace).data
    # The fake plugin gives each pod two of the node's 8 NPUs (device IP 192.168.100.101 + id,
    # a string never dialled) and names the node's address as the server id, as MindCluster's
    # does. Written by hand from hack/deviceplugin/main.go.
    parsed = json.loads(table["hccl.json"])
    assert parsed["status"] == "completed"
    assert parsed["server_count"] == "2"
    devices = [d for server in parsed["server_list"] for d in server["device"]]
    assert [d["rank_id"] for d in devices] == ["0", "1", "2", "3"]
    assert len({d["device_id"] for d in devices}) == 4  # no NPU given to two pods
    for d in devices:
        assert d["device_ip"] == f"192.168.100.{101 + int(d['device_id'])}"
    assert {s["server_id"] for s in parsed["server_list"]} == {SERVER}
    # Each trainer read the completed table and found its own rank and device in it.
    by_rank = {d["rank_id"]: d["device_id"] for d in devices}
    server = re.escape(SERVER)
    for line in assert_one_process_per_device(jobs, "npu", 2, "npu_device"):
        placed = re.search(rf"\(rank (\d) of 4, device (\d) of server {server}\)", line)
        assert placed and by_rank[placed[1]] == placed[2], line


@pytest.mark.usefixtures("real_node")
def test_gaudi_job_on_the_fake_cards(jobs, operator, trainer_image: Image):  # noqa: F811
    operator()
    job = on_the_node("hpu", "gaudi", 2, trainer_image.name).set(
        "spec.gaudi",
        {"hugepages2Mi": "128Mi"},  # the node reserves 512Mi of the kernel's
    )
    jobs.create(job.build())
    status = jobs.wait_phase("hpu", "Failed", timeout=180)
    failed = jobs.condition("hpu", "Failed")
    assert failed["reason"] == "MissingDevice" and "exited 5" in failed["message"], failed
    assert status["restarts"] == 0
    for pod in jobs.pods("hpu"):
        limits = pod.spec.containers[0].resources.limits
        assert limits["habana.ai/gaudi"] == "2" and limits["hugepages-2Mi"] == "128Mi"
    assert_one_process_per_device(jobs, "hpu", 2, "habana_frameworks")
