"""Huawei Ascend 910: one trainer process per NPU (densenet-launch), HCCL's rank table in the
ConfigMap rings-config-<job>, and the environment TF-on-Ascend expects."""

from __future__ import annotations

from densenet_contract import env, trainer_cli

from ...job import Job
from .. import ranktable
from .base import ConfigMapData, PodParts, env_var

RESOURCE = "huawei.com/Ascend910"
VOLUME = "rank-table"


class Ascend:
    name = "ascend"
    trainer_device = trainer_cli.DEVICE_NPU
    launcher = True

    def processes_per_pod(self, job: Job) -> int:
        return job.per_pod

    def config_maps(self, job: Job) -> list[ConfigMapData]:
        return [
            ConfigMapData(job.rank_table_configmap, {ranktable.KEY: ranktable.initial_table(job)})
        ]

    def pod_parts(self, job: Job, index: int) -> PodParts:
        ascend = job.spec["ascend"]
        node_name = ""
        if ascend["source"] == "static":
            node_name = ascend["servers"][index].get("nodeName", "")
        return PodParts(
            resources={RESOURCE: str(job.per_pod)},
            env=[
                env_var(env.RANK_TABLE_FILE, ranktable.FILE),
                env_var(env.RANK_SIZE, job.replicas * job.per_pod),
                # densenet-launch gives each process RANK_ID = this + its local rank.
                env_var(env.RANK_ID, index * job.per_pod),
                env_var(env.JOB_ID, job.name),
            ],
            volumes=[{"name": VOLUME, "configMap": {"name": job.rank_table_configmap}}],
            volume_mounts=[{"name": VOLUME, "mountPath": ranktable.MOUNT_DIR, "readOnly": True}],
            node_name=node_name,
        )
