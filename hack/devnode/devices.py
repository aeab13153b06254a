"""Fake accelerators: per-node device-id allocation and the Ascend device plugin's annotation
(REFERENCE.md, "Ascend 910 on Kubernetes"). Device IPs are made up and never dialled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from devcluster.config import ASCEND_RESOURCE, GAUDI_RESOURCE

ASCEND_ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"


def visible_env(resource: str, ids: list[int], capacity: int) -> dict[str, str]:
    """What the vendor's device plugin puts in the container's environment. Habana's sets the
    device indices twice and, for part of a node, the module ids the TF bridge selects cards
    by (on a fake node the module id is the index)."""
    listed = ",".join(map(str, ids))
    if resource == ASCEND_RESOURCE:
        return {"ASCEND_VISIBLE_DEVICES": listed}
    if resource == GAUDI_RESOURCE:
        env = {"HABANA_VISIBLE_DEVICES": listed, "HL_VISIBLE_DEVICES": listed}
        if len(ids) < capacity:
            env["HABANA_VISIBLE_MODULES"] = listed
        return env
    raise ValueError(f"no device plugin for {resource}")


def requested(pod: dict, resource: str) -> int:
    """Extended resources: requests equal limits; count the app containers' sum."""
    total = 0
    for c in pod["spec"].get("containers", []):
        res = c.get("resources") or {}
        value = (res.get("limits") or {}).get(resource) or (res.get("requests") or {}).get(resource)
        total += int(value or 0)
    return total


def device_ip(device_id: int) -> str:
    return f"192.168.100.{101 + device_id}"


def ascend_annotation(pod_name: str, node_ip: str, device_ids: list[int]) -> str:
    return json.dumps(
        {
            "pod_name": pod_name,
            "server_id": node_ip,
            "host_ip": node_ip,
            "devices": [{"device_id": str(i), "device_ip": device_ip(i)} for i in device_ids],
        },
        separators=(",", ":"),
    )


def ids_from_annotation(value: str | None) -> list[int]:
    try:
        return [int(d["device_id"]) for d in json.loads(value or "")["devices"]]
    except (ValueError, KeyError, TypeError):
        return []


class AllocationError(Exception):
    pass


@dataclass
class DeviceAllocator:
    """Distinct device ids of one resource on one node, held per pod uid."""

    capacity: int
    held: dict[str, list[int]] = field(default_factory=dict)

    def allocate(self, uid: str, count: int, wanted: list[int] | None = None) -> list[int]:
        if uid in self.held:
            return self.held[uid]
        used = {i for ids in self.held.values() for i in ids}
        if wanted and len(wanted) == count and not used & set(wanted):
            ids = sorted(wanted)
        else:
            ids = [i for i in range(self.capacity) if i not in used][:count]
        if len(ids) < count:
            raise AllocationError(f"{count} devices requested, {len(ids)} free")
        self.held[uid] = ids
        return ids

    def release(self, uid: str) -> None:
        self.held.pop(uid, None)
