"""Plain CPUs: one trainer process per pod, MultiWorkerMirroredStrategy across pods."""

from __future__ import annotations

from ...job import TF_PORT, Job
from .base import ENV_TF_CONFIG, ConfigMapData, PodParts, env_var, tf_config


def worker_addresses(job: Job) -> list[str]:
    return [f"{job.pod_host(i)}:{TF_PORT}" for i in range(job.replicas)]


class Cpu:
    name = "cpu"
    trainer_device = "cpu"
    launcher = False

    def processes_per_pod(self, job: Job) -> int:
        return 1

    def config_maps(self, job: Job) -> list[ConfigMapData]:
        return []

    def pod_parts(self, job: Job, index: int) -> PodParts:
        return PodParts(env=[env_var(ENV_TF_CONFIG, tf_config(worker_addresses(job), index))])
