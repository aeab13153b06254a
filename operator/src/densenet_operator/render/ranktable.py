"""Ascend HCCL rank tables (REFERENCE.md, "Ascend 910 on Kubernetes"): the ConfigMap
``rings-config-<job>`` key ``hccl.json`` starts as ``{"status":"initializing"}`` and is completed
from the servers' devices, given statically in the spec or read from the device plugin's pod
annotations. Every number in a table is a JSON string, as HCCL expects. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..job import LABEL_INDEX, Job

KEY = "hccl.json"
MOUNT_DIR = "/user/serverid/devindex/config"
FILE = f"{MOUNT_DIR}/{KEY}"
INITIALIZING = "initializing"
COMPLETED = "completed"
INITIALIZING_TEXT = json.dumps({"status": INITIALIZING}, separators=(",", ":"))

# The device plugin's annotation; before 2021 the prefix was atlas.kubectl.kubernetes.io.
ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"
LEGACY_ANNOTATION = "atlas.kubectl.kubernetes.io/ascend-910-configuration"


@dataclass(frozen=True)
class Device:
    device_id: str
    device_ip: str  # a string in a file HCCL reads; never dialled here


@dataclass(frozen=True)
class Server:
    """One pod's share of the table, in pod order."""

    pod_name: str
    server_id: str
    devices: tuple[Device, ...]


def version_0(servers: Sequence[Server]) -> str:
    """Seed 000's format (group_list), laid out exactly as its sample file."""
    instances = []
    for server in servers:
        devices = ",\n".join(
            "      "
            + json.dumps(
                {"device_id": d.device_id, "device_ip": d.device_ip}, separators=(",", ":")
            )
            for d in server.devices
        )
        instances.append(
            "    {\n"
            '     "devices":[\n'
            f"{devices}\n"
            "     ],\n"
            f'     "pod_name":{json.dumps(server.pod_name)},\n'
            f'     "server_id":{json.dumps(server.server_id)}\n'
            "    }"
        )
    device_count = sum(len(s.devices) for s in servers)
    return (
        "{\n"
        ' "group_count": "1",\n'
        ' "group_list": [\n'
        "  {\n"
        '   "group_name": "worker",\n'
        f'   "device_count": "{device_count}",\n'
        f'   "instance_count": "{len(servers)}",\n'
        '   "instance_list": [\n' + ",\n".join(instances) + "\n   ]\n"
        "  }\n"
        " ],\n"
        f' "status": "{COMPLETED}"\n'
        "}\n"
    )


def version_1_0(servers: Sequence[Server]) -> str:
    """Format 1.0 (server_list); rank_id counts devices across servers in pod order."""
    rank = 0
    server_list = []
    for server in servers:
        devices = []
        for d in server.devices:
            devices.append(
                {"device_id": d.device_id, "device_ip": d.device_ip, "rank_id": str(rank)}
            )
            rank += 1
        server_list.append({"server_id": server.server_id, "device": devices})
    table = {
        "status": COMPLETED,
        "version": "1.0",
        "server_count": str(len(servers)),
        "server_list": server_list,
    }
    return json.dumps(table, indent=2) + "\n"


FORMATS = {"0": version_0, "1.0": version_1_0}


def completed_table(version: str, servers: Sequence[Server]) -> str:
    return FORMATS[version](servers)


def static_servers(job: Job) -> list[Server]:
    """Servers from spec.ascend.servers (static source), pod i = servers[i]."""
    return [
        Server(
            pod_name=job.pod_name(i),
            server_id=entry["serverId"],
            devices=tuple(Device(d["deviceId"], d["deviceIp"]) for d in entry["devices"]),
        )
        for i, entry in enumerate(job.spec["ascend"]["servers"])
    ]


def initial_table(job: Job) -> str:
    """``hccl.json`` at render time: completed for the static source, else initializing."""
    ascend = job.spec["ascend"]
    if ascend["source"] == "static":
        return completed_table(ascend["rankTableVersion"], static_servers(job))
    return INITIALIZING_TEXT


@dataclass(frozen=True)
class TableState:
    """What the device-plugin source gives for the current pods."""

    state: str  # INITIALIZING or COMPLETED
    text: str  # the hccl.json to write
    reason: str  # why it is not completed yet ("" when completed)


def _server_from_annotation(pod: dict[str, Any], per_pod: int) -> Server | str:
    """The pod's Server, or why its annotation cannot give one."""
    name = pod["metadata"]["name"]
    annotations = pod["metadata"].get("annotations") or {}
    raw = annotations.get(ANNOTATION, annotations.get(LEGACY_ANNOTATION))
    if raw is None:
        return f"{name} has no {ANNOTATION} annotation yet"
    try:
        value = json.loads(raw)
        devices = tuple(Device(str(d["device_id"]), str(d["device_ip"])) for d in value["devices"])
        server_id = str(value["server_id"])
    except (ValueError, KeyError, TypeError) as exc:
        return f"{name}: the {ANNOTATION} annotation is malformed ({type(exc).__name__}: {exc})"
    if len(devices) != per_pod:
        return f"{name}: the device plugin gave {len(devices)} devices, the job wants {per_pod}"
    return Server(pod_name=name, server_id=server_id, devices=devices)


def from_pods(job: Job, pods: Sequence[dict[str, Any]]) -> TableState:
    """Complete the table from the pods of one attempt, once every pod carries the device
    plugin's annotation; else stay initializing and say why."""
    by_index: dict[int, dict[str, Any]] = {}
    for pod in pods:
        label = (pod["metadata"].get("labels") or {}).get(LABEL_INDEX, "")
        if label.isdigit() and int(label) < job.replicas:
            by_index[int(label)] = pod
    missing = [job.pod_name(i) for i in range(job.replicas) if i not in by_index]
    if missing:
        return TableState(
            INITIALIZING, INITIALIZING_TEXT, f"pods not created yet: {', '.join(missing)}"
        )
    servers = []
    problems = []
    for i in range(job.replicas):
        result = _server_from_annotation(by_index[i], job.per_pod)
        if isinstance(result, str):
            problems.append(result)
        else:
            servers.append(result)
    if problems:
        return TableState(INITIALIZING, INITIALIZING_TEXT, "; ".join(problems))
    version = job.spec["ascend"]["rankTableVersion"]
    return TableState(COMPLETED, completed_table(version, servers), "")
