"""The one small interface every accelerator kind implements (after Kubeflow Trainer's
plugin framework): what a pod of this kind needs beyond the common trainer pod."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from densenet_contract import env

from ...job import Job

# The pod volume of the job's TF cluster ConfigMap (the CRD reserves the name).
TF_CLUSTER_VOLUME = "tf-cluster"


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
    # Never changed after creation: kubelets then stop watching it (one watch per pod).
    immutable: bool = False


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


def tf_cluster_config_map(job: Job, workers: list[str]) -> ConfigMapData:
    """TF_CONFIG's cluster, written once for the job instead of into every pod's environment
    (whose size would grow with the job: densenet_contract.env)."""
    text = env.tf_cluster_text({env.TF_TASK_WORKER: workers})
    return ConfigMapData(job.tf_cluster_configmap, {env.TF_CLUSTER_KEY: text}, immutable=True)


def tf_task_parts(job: Job, index: int) -> PodParts:
    """A pod's part of TF_CONFIG: the mounted cluster file and its own task (the first
    process's index; densenet-launch gives each further process index + its local rank).
    The same few bytes whatever the size of the job."""
    return PodParts(
        env=[
            env_var(env.TF_CLUSTER_FILE, env.TF_CLUSTER_PATH),
            env_var(env.TF_TASK_TYPE, env.TF_TASK_WORKER),
            env_var(env.TF_TASK_INDEX, index),
        ],
        volumes=[{"name": TF_CLUSTER_VOLUME, "configMap": {"name": job.tf_cluster_configmap}}],
        volume_mounts=[
            {"name": TF_CLUSTER_VOLUME, "mountPath": env.TF_CLUSTER_DIR, "readOnly": True}
        ],
    )
