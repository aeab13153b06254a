"""Fluent builder for test jobs (after Kubeflow Trainer's testing wrappers): start from the
smallest valid job and set fields by dotted path."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

from densenet_operator import schema
from densenet_operator.job import Job

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
IMAGE = "registry.test/densenet-trainer:1"


class JobBuilder:
    def __init__(self, name: str = "dn", namespace: str | None = None) -> None:
        self.obj: dict[str, Any] = {
            "apiVersion": schema.API_VERSION,
            "kind": schema.KIND,
            "metadata": {"name": name},
            "spec": {"dataset": {"format": "synthetic"}},
        }
        if namespace:
            self.obj["metadata"]["namespace"] = namespace

    def set(self, path: str, value: Any) -> JobBuilder:
        """Set ``spec.training.lr``-style paths, creating mappings on the way."""
        *parents, last = path.split(".")
        node = self.obj
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
        return self

    def unset(self, path: str) -> JobBuilder:
        """Remove ``spec.training.lr``-style paths (nothing if absent)."""
        *parents, last = path.split(".")
        node = self.obj
        for key in parents:
            node = node.get(key, {})
        node.pop(last, None)
        return self

    def accelerator(self, kind: str, per_pod: int = 1) -> JobBuilder:
        return self.set("spec.accelerator", {"type": kind, "perPod": per_pod})

    def replicas(self, count: int) -> JobBuilder:
        return self.set("spec.replicas", count)

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self.obj)

    def defaulted(self) -> Job:
        return Job.from_object(schema.apply(self.build()), "ns1")


def process_limit_rule() -> dict[str, Any]:
    """The CRD's rule on the trainer processes of a job (replicas x perPod)."""
    spec = schema.openapi_schema()["properties"]["spec"]
    (rule,) = [r for r in spec["x-kubernetes-validations"] if "self.replicas * " in r["rule"]]
    return rule


def process_limit() -> int:
    """The most trainer processes (replicas x perPod) the CRD allows a job."""
    pattern = r"self\.replicas \* self\.accelerator\.perPod <= (\d+)"
    (limit,) = re.fullmatch(pattern, process_limit_rule()["rule"]).groups()
    return int(limit)


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


FAKE = {"densenet.dev/fake-node": "true"}
FAKE_TOLERATION = {"key": "densenet.dev/fake-node", "operator": "Exists", "effect": "NoSchedule"}


def on_kwok(name: str, kind: str, per_pod: int, replicas: int = 2) -> JobBuilder:
    return (
        JobBuilder(name)
        .accelerator(kind, per_pod)
        .replicas(replicas)
        .set("spec.scheduling.nodeSelector", FAKE)
        .set("spec.scheduling.tolerations", [FAKE_TOLERATION])
    )


def ascend_annotation(pod_name: str, node_ip: str, device_ids: list[int]) -> str:
    """The value of the Ascend device plugin's pod annotation (MindCluster's format) as the
    real node's fake plugin writes it (hack/deviceplugin): device IPs 192.168.100.101 + id."""
    devices = [{"device_id": str(i), "device_ip": f"192.168.100.{101 + i}"} for i in device_ids]
    value = {"pod_name": pod_name, "server_id": node_ip, "host_ip": node_ip, "devices": devices}
    return json.dumps(value, separators=(",", ":"))
