"""TCP ports and port names. The chart's values.yaml, the CRD's metrics default and the
Dockerfiles' EXPOSE lines are copies, checked against these by tests/contract."""

from __future__ import annotations

# The trainer's Prometheus endpoint (densenet-train --metrics_port, the CRD's spec.metrics.port
# default); local rank j of a pod serves on this + j. 9400 is dcgm-exporter's port on GPU
# nodes; 9410 collides with nothing shipped next to the trainer.
TRAINER_METRICS = 9410
# The TensorFlow gRPC server of one CPU/GPU worker process in TF_CONFIG (Kubeflow TFJob's port).
TF_GRPC = 2222
# Gaudi: TF_CONFIG lists one address per process, port GAUDI_BASE + local rank (Habana's scripts).
GAUDI_BASE = 2410
# The operator's own /metrics (densenet-operator run --metrics-port) and kopf's /healthz.
OPERATOR_METRICS = 8000
OPERATOR_HEALTH = 8080

# Container port names of a trainer pod: local rank 0 serves on "metrics", rank j on
# "metrics-<j>" (the chart's PodMonitor scrapes these names).
METRICS_PORT_NAME = "metrics"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"


def metrics_port_name(local_rank: int) -> str:
    """The container port name of local rank ``local_rank``'s metrics endpoint."""
    return METRICS_PORT_NAME if local_rank == 0 else f"{METRICS_PORT_NAME}-{local_rank}"
