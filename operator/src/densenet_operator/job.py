"""A defaulted DenseNetTrainingJob as the renderers see it: names, labels and the numbers every
accelerator kind derives from the spec. Pure: no I/O."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from densenet_contract import labels as contract_labels

# Labels on every child object; the operator selects pods by them (densenet_contract.labels:
# the chart's PodMonitor and runbooks select by them too).
LABEL_JOB = contract_labels.JOB
LABEL_INDEX = contract_labels.REPLICA_INDEX
LABEL_ATTEMPT = contract_labels.ATTEMPT
LABEL_ACCELERATOR = contract_labels.ACCELERATOR
LABEL_NAME = contract_labels.NAME
LABEL_MANAGED_BY = contract_labels.MANAGED_BY
TRAINER_APP = contract_labels.TRAINER_APP
MANAGER = contract_labels.MANAGER

# Annotation set on a pod that runs privileged (Gaudi hostDevices); the operator posts an Event.
ANNOTATION_PRIVILEGED = contract_labels.PRIVILEGED

CONTAINER = "trainer"


@dataclass(frozen=True)
class Job:
    """A job after the CRD's defaults were applied (schema.apply or the API server)."""

    name: str
    namespace: str
    spec: dict[str, Any]

    @classmethod
    def from_object(cls, obj: dict[str, Any], namespace: str | None = None) -> Job:
        meta = obj["metadata"]
        return cls(meta["name"], meta.get("namespace") or namespace or "default", obj["spec"])

    @property
    def accelerator(self) -> str:
        return self.spec["accelerator"]["type"]

    @property
    def per_pod(self) -> int:
        return int(self.spec["accelerator"]["perPod"])

    @property
    def replicas(self) -> int:
        return int(self.spec["replicas"])

    @property
    def service_name(self) -> str:
        return self.name

    def pod_name(self, index: int) -> str:
        return f"{self.name}-worker-{index}"

    def pod_host(self, index: int) -> str:
        """Stable DNS name of pod ``index`` through the headless Service."""
        return f"{self.pod_name(index)}.{self.service_name}.{self.namespace}.svc"

    @property
    def identity(self) -> str:
        """What the trainer records in its checkpoint directory's marker: unique in a cluster."""
        return f"{self.namespace}/{self.name}"

    @property
    def log_dir(self) -> str:
        """The trainer's --log_dir: the job's own subdirectory of the checkpoint volume unless
        spec.checkpoint.perJobDirectory is false (a PVC belongs to one namespace, and the
        marker's identity catches two namespaces sharing other storage)."""
        checkpoint = self.spec["checkpoint"]
        if checkpoint["perJobDirectory"]:
            return posixpath.join(checkpoint["path"], self.name)
        return checkpoint["path"]

    @property
    def rank_table_configmap(self) -> str:
        return f"rings-config-{self.name}"

    @property
    def tf_cluster_configmap(self) -> str:
        """The ConfigMap holding TF_CONFIG's cluster, once for every pod of the job."""
        return f"{self.name}-tf-cluster"

    def selector_labels(self) -> dict[str, str]:
        return {LABEL_JOB: self.name}

    def labels(self, index: int | None = None, attempt: int | None = None) -> dict[str, str]:
        labels = {
            LABEL_NAME: TRAINER_APP,
            LABEL_MANAGED_BY: MANAGER,
            LABEL_JOB: self.name,
            LABEL_ACCELERATOR: self.accelerator,
        }
        if index is not None:
            labels[LABEL_INDEX] = str(index)
        if attempt is not None:
            labels[LABEL_ATTEMPT] = str(attempt)
        return labels

    @property
    def metrics_port(self) -> int | None:
        metrics = self.spec["metrics"]
        return int(metrics["port"]) if metrics["enabled"] else None
