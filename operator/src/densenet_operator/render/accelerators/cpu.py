"""Plain CPUs: one trainer process per pod, MultiWorkerMirroredStrategy across pods."""

from __future__ import annotations

from densenet_contract import ports, trainer_cli

from ...job import Job
from .base import ConfigMapData, PodParts, tf_cluster_config_map, tf_task_parts


def worker_addresses(job: Job) -> list[str]:
    return [f"{job.pod_host(i)}:{ports.TF_GRPC}" for i in range(job.replicas)]


class Cpu:
    name = "cpu"
    trainer_device = trainer_cli.DEVICE_CPU
    launcher = False

    def processes_per_pod(self, job: Job) -> int:
        return 1

    def config_maps(self, job: Job) -> list[ConfigMapData]:
        return [tf_cluster_config_map(job, worker_addresses(job))]

    def pod_parts(self, job: Job, index: int) -> PodParts:
        return tf_task_parts(job, index)
