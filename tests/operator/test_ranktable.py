"""Ascend rank tables: both formats for 2 pods x 8 NPUs, seed 000's own table byte for byte,
and completion from the device plugin's annotations as the real node's fake plugin writes them."""

from __future__ import annotations

import json

import pytest

from densenet_operator import schema
from densenet_operator.job import Job
from densenet_operator.render import ranktable, render
from tests.operator.jobs import EXAMPLES, IMAGE, JobBuilder, ascend_annotation, load

# Seed 000's 8P sample, as printed in its README, with one change: pod_name is the pod's name
# (<job>-worker-0) where the seed's hand-made file says "ascend8p".
SEED_000_TABLE = """{
 "group_count": "1",
 "group_list": [
  {
   "group_name": "worker",
   "device_count": "8",
   "instance_count": "1",
   "instance_list": [
    {
     "devices":[
      {"device_id":"0","device_ip":"192.168.100.101"},
      {"device_id":"1","device_ip":"192.168.101.101"},
      {"device_id":"2","device_ip":"192.168.102.101"},
      {"device_id":"3","device_ip":"192.168.103.101"},
      {"device_id":"4","device_ip":"192.168.100.100"},
      {"device_id":"5","device_ip":"192.168.101.100"},
      {"device_id":"6","device_ip":"192.168.102.100"},
      {"device_id":"7","device_ip":"192.168.103.100"}
     ],
     "pod_name":"ascend8p-worker-0",
     "server_id":"127.0.0.1"
    }
   ]
  }
 ],
 "status": "completed"
}
"""


def test_static_example_reproduces_seed_000s_table_byte_for_byte():
    (example,) = (p for p in EXAMPLES if p.name == "ascend-static-seed000.yaml")
    job = Job.from_object(schema.apply(load(example)))
    (cm,) = render(job, IMAGE).config_maps
    assert cm["data"]["hccl.json"] == SEED_000_TABLE


def devices(first_ip_octet: int) -> list[dict[str, str]]:
    return [
        {"device_id": str(i), "device_ip": f"192.168.{first_ip_octet}.{101 + i}"} for i in range(8)
    ]


SERVERS_2X8 = [
    {
        "serverId": "10.10.0.11",
        "devices": [{"deviceId": str(i), "deviceIp": f"192.168.1.{101 + i}"} for i in range(8)],
    },
    {
        "serverId": "10.10.0.12",
        "devices": [{"deviceId": str(i), "deviceIp": f"192.168.2.{101 + i}"} for i in range(8)],
    },
]

EXPECTED_V0_2X8 = {
    "group_count": "1",
    "group_list": [
        {
            "group_name": "worker",
            "device_count": "16",
            "instance_count": "2",
            "instance_list": [
                {"devices": devices(1), "pod_name": "dn-worker-0", "server_id": "10.10.0.11"},
                {"devices": devices(2), "pod_name": "dn-worker-1", "server_id": "10.10.0.12"},
            ],
        }
    ],
    "status": "completed",
}

EXPECTED_V1_2X8 = {
    "status": "completed",
    "version": "1.0",
    "server_count": "2",
    "server_list": [
        {
            "server_id": "10.10.0.11",
            "device": [
                {"device_id": "0", "device_ip": "192.168.1.101", "rank_id": "0"},
                {"device_id": "1", "device_ip": "192.168.1.102", "rank_id": "1"},
                {"device_id": "2", "device_ip": "192.168.1.103", "rank_id": "2"},
                {"device_id": "3", "device_ip": "192.168.1.104", "rank_id": "3"},
                {"device_id": "4", "device_ip": "192.168.1.105", "rank_id": "4"},
                {"device_id": "5", "device_ip": "192.168.1.106", "rank_id": "5"},
                {"device_id": "6", "device_ip": "192.168.1.107", "rank_id": "6"},
                {"device_id": "7", "device_ip": "192.168.1.108", "rank_id": "7"},
            ],
        },
        {
            "server_id": "10.10.0.12",
            "device": [
                {"device_id": "0", "device_ip": "192.168.2.101", "rank_id": "8"},
                {"device_id": "1", "device_ip": "192.168.2.102", "rank_id": "9"},
                {"device_id": "2", "device_ip": "192.168.2.103", "rank_id": "10"},
                {"device_id": "3", "device_ip": "192.168.2.104", "rank_id": "11"},
                {"device_id": "4", "device_ip": "192.168.2.105", "rank_id": "12"},
                {"device_id": "5", "device_ip": "192.168.2.106", "rank_id": "13"},
                {"device_id": "6", "device_ip": "192.168.2.107", "rank_id": "14"},
                {"device_id": "7", "device_ip": "192.168.2.108", "rank_id": "15"},
            ],
        },
    ],
}


@pytest.mark.parametrize(
    ("version", "expected"), [("0", EXPECTED_V0_2X8), ("1.0", EXPECTED_V1_2X8)]
)
def test_static_2x8_tables(version, expected):
    job = (
        JobBuilder("dn")
        .accelerator("ascend", 8)
        .replicas(2)
        .set(
            "spec.ascend", {"source": "static", "rankTableVersion": version, "servers": SERVERS_2X8}
        )
    )
    (cm,) = render(job.defaulted(), IMAGE).config_maps
    assert json.loads(cm["data"]["hccl.json"]) == expected


def ascend_job(version: str = "1.0", replicas: int = 2) -> Job:
    return (
        JobBuilder("dn")
        .accelerator("ascend", 8)
        .replicas(replicas)
        .set("spec.ascend", {"rankTableVersion": version})
        .defaulted()
    )


def pod(index: int, annotation: str | None) -> dict:
    annotations = {ranktable.ANNOTATION: annotation} if annotation is not None else {}
    return {
        "metadata": {
            "name": f"dn-worker-{index}",
            "labels": {"densenet.dev/replica-index": str(index)},
            "annotations": annotations,
        }
    }


def plugin_pods() -> list[dict]:
    # The fake device plugin's annotation (hack/deviceplugin): device IPs 192.168.100.101 + id.
    return [
        pod(1, ascend_annotation("dn-worker-1", "10.10.0.12", list(range(8)))),
        pod(0, ascend_annotation("dn-worker-0", "10.10.0.11", list(range(8)))),
    ]


def test_device_plugin_annotations_complete_the_table_in_pod_order():
    state = ranktable.from_pods(ascend_job("1.0"), plugin_pods())
    assert state.state == "completed"
    assert state.reason == ""
    table = json.loads(state.text)
    assert table["server_count"] == "2"
    assert [s["server_id"] for s in table["server_list"]] == ["10.10.0.11", "10.10.0.12"]
    second = table["server_list"][1]["device"]
    assert second[0] == {"device_id": "0", "device_ip": "192.168.100.101", "rank_id": "8"}
    assert second[7] == {"device_id": "7", "device_ip": "192.168.100.108", "rank_id": "15"}


def test_device_plugin_table_in_seed_format():
    table = json.loads(ranktable.from_pods(ascend_job("0"), plugin_pods()).text)
    instances = table["group_list"][0]["instance_list"]
    assert [i["pod_name"] for i in instances] == ["dn-worker-0", "dn-worker-1"]
    assert table["group_list"][0]["device_count"] == "16"


@pytest.mark.parametrize(
    ("pods", "reason"),
    [
        ([pod(0, None), pod(1, None)], "dn-worker-0 has no ascend.kubectl.kubernetes.io"),
        (
            [pod(0, "{not json"), pod(1, None)],
            "dn-worker-0: the ascend.kubectl.kubernetes.io/ascend-910-configuration annotation "
            "is malformed",
        ),
        ([pod(0, '{"server_id": "x"}'), pod(1, None)], "malformed (KeyError"),
        (
            [pod(0, ascend_annotation("dn-worker-0", "h", [0, 1]))],
            "pods not created yet: dn-worker-1",
        ),
        (
            [
                pod(0, ascend_annotation("dn-worker-0", "h", [0, 1])),
                pod(1, ascend_annotation("dn-worker-1", "h", list(range(8)))),
            ],
            "dn-worker-0: the device plugin gave 2 devices, the job wants 8",
        ),
    ],
)
def test_missing_or_malformed_annotations_keep_it_initializing(pods, reason):
    state = ranktable.from_pods(ascend_job(), pods)
    assert state.state == "initializing"
    assert state.text == '{"status":"initializing"}'
    assert reason in state.reason
