"""The real node's configuration as written (pure): containerd's, the CNI network's, the
kubelet's, and the pause image's OCI archive."""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import tarfile
import tomllib
from pathlib import Path

import yaml

from devcluster import config, realnode
from devcluster.config import ClusterPaths

NODE = realnode.NodePaths(Path("/c/node"))


def test_containerd_runs_debians_runc_with_cgroupfs_the_pause_image_and_our_cni():
    text = realnode.containerd_config(NODE, Path("/cache/cni"), "densenet.local/pause:3.10.2")
    conf = tomllib.loads(text)
    assert conf["version"] == 3
    assert conf["grpc"]["address"] == "/c/node/containerd-state/containerd.sock"
    images = conf["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == "densenet.local/pause:3.10.2"
    runtime = conf["plugins"]["io.containerd.cri.v1.runtime"]
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert (runc["BinaryName"], runc["SystemdCgroup"]) == ("/usr/sbin/runc", False)
    assert runtime["cni"] == {"bin_dirs": ["/cache/cni"], "conf_dir": "/c/node/cni"}
    assert runtime["netns_mounts_under_state_dir"] is True  # nothing in /var/run/netns
    assert runtime["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE on this machine
    assert conf["plugins"]["io.containerd.grpc.v1.cri"]["stream_server_address"] == "127.0.0.1"


def test_pods_get_the_service_range_and_no_default_route():
    (bridge, portmap) = json.loads(realnode.cni_config())["plugins"]
    assert bridge["bridge"] == config.REAL_NODE_BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [
        [{"subnet": str(config.REAL_NODE_POD_CIDR), "gateway": str(config.REAL_NODE_GATEWAY)}]
    ]
    assert bridge["ipam"]["routes"] == [{"dst": str(config.SERVICE_CIDR)}]
    assert portmap["type"] == "portmap"


def test_the_kubelet_runs_on_cgroup_v1_serves_on_the_bridge_and_taints_its_node():
    conf = yaml.safe_load(realnode.kubelet_config(NODE, Path("/pki")))
    assert conf["failCgroupV1"] is False and conf["cgroupDriver"] == "cgroupfs"
    assert conf["containerRuntimeEndpoint"] == f"unix://{NODE.socket}"
    assert conf["address"] == str(config.REAL_NODE_GATEWAY)
    assert conf["healthzBindAddress"] == "127.0.0.1" and conf["readOnlyPort"] == 0
    assert conf["authentication"]["anonymous"] == {"enabled": False}
    assert conf["resolvConf"] == ""  # the host's servers are off the machine
    assert conf["podLogsDir"] == str(NODE.pod_logs)  # not /var/log/pods
    assert conf["registerWithTaints"] == [
        {"key": config.REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
    ]
    assert conf["imageGCHighThresholdPercent"] == 100  # loaded images are never collected


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_the_pause_archive_is_an_oci_layout_whose_blobs_match_their_digests():
    files = members(realnode.oci_archive("x/pause:1", b"\x7fELF", "/pause"))
    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "x/pause:1"
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'][7:]}"])
    layer = gzip.decompress(files[f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (member,) = tar.getmembers()
    assert (member.name, member.mode) == ("pause", 0o755)
    image_config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    assert image_config["config"]["Entrypoint"] == ["/pause"]
    assert image_config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]


def test_image_names_as_containerd_stores_them():
    assert realnode._qualified("densenet-trainer:dev") == "docker.io/library/densenet-trainer:dev"
    assert realnode._qualified("team/img") == "docker.io/team/img:latest"
    assert realnode._qualified("densenet.local/pause:3") == "densenet.local/pause:3"


def test_the_node_range_is_apart_from_every_other():
    others = [config.SERVICE_CIDR, config.KWOK_POD_CIDR]
    assert not any(config.REAL_NODE_POD_CIDR.overlaps(o) for o in others)
    assert ipaddress.ip_address(config.REAL_NODE_GATEWAY) in config.REAL_NODE_POD_CIDR


def test_kube_proxy_serves_node_ports_on_the_bridge_only_and_leaves_conntrack_alone():
    paths = ClusterPaths(Path("/c"))
    conf = yaml.safe_load(realnode.kube_proxy_config(paths))
    assert conf["mode"] == "iptables" and conf["clusterCIDR"] == str(config.REAL_NODE_POD_CIDR)
    assert conf["nodePortAddresses"] == [f"{config.REAL_NODE_GATEWAY}/32"]
    assert conf["healthzBindAddress"].startswith("127.0.0.1:")
    assert conf["metricsBindAddress"].startswith("127.0.0.1:")
    assert conf["conntrack"]["maxPerCore"] == 0  # the host's limits stay as they are


def test_cluster_dns_answers_on_the_gateway_and_forwards_nothing():
    text = realnode.corefile(ClusterPaths(Path("/c")))
    assert f"bind {config.REAL_NODE_GATEWAY}" in text
    assert "kubernetes cluster.local" in text and "kubeconfig /c/coredns.kubeconfig" in text
    assert "forward" not in text  # the host's servers are off the machine
    kubelet = yaml.safe_load(realnode.kubelet_config(NODE, Path("/pki")))
    assert kubelet["clusterDNS"] == [str(config.REAL_NODE_GATEWAY)]
