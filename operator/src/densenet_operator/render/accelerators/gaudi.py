"""Habana Gaudi: one trainer process per card (densenet-launch), HPUStrategy over a TF_CONFIG
that lists every process (Habana's scripts use port 2410 + local rank).

devicePlugin mode asks the device plugin for the cards. hostDevices mode mounts the raw
/dev/hl<N> and /dev/hl_controlD<N> nodes as seed 002's docker command does: that needs a
privileged container, so it is an explicit opt-in and the pod says so in an annotation that the
operator turns into an Event.
"""

from __future__ import annotations

from densenet_contract import ports, trainer_cli

from ...job import ANNOTATION_PRIVILEGED, Job
from .base import ConfigMapData, PodParts, tf_cluster_config_map, tf_task_parts

RESOURCE = "habana.ai/gaudi"
HUGEPAGES = "hugepages-2Mi"
PRIVILEGED_NOTE = (
    "gaudi.mode hostDevices: privileged container with host devices /dev/hl0-{last} and "
    "/dev/hl_controlD0-{last}"
)


def worker_addresses(job: Job) -> list[str]:
    return [
        f"{job.pod_host(i)}:{ports.GAUDI_BASE + card}"
        for i in range(job.replicas)
        for card in range(job.per_pod)
    ]


def host_devices(per_pod: int) -> tuple[list[dict], list[dict]]:
    volumes, mounts = [], []
    for card in range(per_pod):
        for kind, path in (("hl", f"/dev/hl{card}"), ("hl-controld", f"/dev/hl_controlD{card}")):
            name = f"{kind}-{card}"
            volumes.append({"name": name, "hostPath": {"path": path, "type": "CharDevice"}})
            mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


class Gaudi:
    name = "gaudi"
    trainer_device = trainer_cli.DEVICE_HPU
    launcher = True

    def processes_per_pod(self, job: Job) -> int:
        return job.per_pod

    def config_maps(self, job: Job) -> list[ConfigMapData]:
        return [tf_cluster_config_map(job, worker_addresses(job))]

    def pod_parts(self, job: Job, index: int) -> PodParts:
        gaudi = job.spec["gaudi"]
        # densenet-launch gives each process task index = this + its local rank.
        parts = tf_task_parts(job, index * job.per_pod)
        parts.resources = {HUGEPAGES: gaudi["hugepages2Mi"]}
        parts.host_ipc = True
        parts.add_capabilities = ["SYS_NICE"]
        if gaudi["mode"] == "hostDevices":
            volumes, mounts = host_devices(job.per_pod)
            parts.volumes += volumes
            parts.volume_mounts += mounts
            parts.privileged = True
            parts.annotations[ANNOTATION_PRIVILEGED] = PRIVILEGED_NOTE.format(last=job.per_pod - 1)
        else:
            parts.resources[RESOURCE] = str(job.per_pod)
        return parts
