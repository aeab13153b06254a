"""NVIDIA GPUs: one process per pod sees all its GPUs (MirroredStrategy inside the pod,
MultiWorkerMirroredStrategy across pods)."""

from __future__ import annotations

from densenet_contract import trainer_cli

from ...job import Job
from .base import PodParts
from .cpu import Cpu

RESOURCE = "nvidia.com/gpu"


class Nvidia(Cpu):
    name = "nvidia"
    trainer_device = trainer_cli.DEVICE_GPU

    def pod_parts(self, job: Job, index: int) -> PodParts:
        parts = super().pod_parts(job, index)
        parts.resources[RESOURCE] = str(job.per_pod)
        return parts
