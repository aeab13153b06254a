"""The one small interface every accelerator kind implements (after Kubeflow Trainer's
plugin framework): what a pod of this kind needs beyond the common trainer pod."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...job import Job


@dataclass
class PodParts:
    """An accelerator's additions to one trainer pod."""

    resources: dict[str, str] = field(default_factory=dict)  # requests == limits
    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    host_ipc: bool = False
    add_capabilities: list[str] = field(default_factory=list)
    privileged: bool = False
    node_name: str = ""


@dataclass(frozen=True)
class ConfigMapData:
    name: str
    data: dict[str, str]


class Accelerator(Protocol):
    """One module per kind: cpu, nvidia, ascend, gaudi."""

    name: str
    trainer_device: str  # densenet-train --device
    launcher: bool  # one densenet-train per device, started by densenet-launch

    def processes_per_pod(self, job: Job) -> int: ...

    def config_maps(self, job: Job) -> list[ConfigMapData]: ...

    def pod_parts(self, job: Job, index: int) -> PodParts: ...


def env_var(name: str, value: str | int) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def tf_config(workers: list[str], index: int) -> str:
    """TF_CONFIG in Kubeflow TFJob's format: every worker process, and this one's index."""
    config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    return json.dumps(config, separators=(",", ":"))
