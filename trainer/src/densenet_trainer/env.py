"""Environment variables the trainer reads: the contract with the operator, in one place.

The operator sets the ``DENSENET_*`` variables on every trainer container. The others are
set by the cluster's own machinery (Kubeflow-style ``TF_CONFIG``, Ascend's hccl-controller and
device plugin, Habana's device plugin) and keep their upstream names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from .errors import UserError

# Set by the operator; they only label metrics and logs, never change training.
JOB_NAME = "DENSENET_JOB_NAME"
JOB_NAMESPACE = "DENSENET_JOB_NAMESPACE"
RANK = "DENSENET_RANK"  # global rank of this process (0 = chief)
# Set by densenet-launch on each child: its index among the processes of its pod.
LOCAL_RANK = "DENSENET_LOCAL_RANK"

# TensorFlow multi-worker (CPU/GPU/Gaudi): {"cluster": {"worker": [...]}, "task": {...}}.
TF_CONFIG = "TF_CONFIG"

# Ascend: one process per NPU.
RANK_TABLE_FILE = "RANK_TABLE_FILE"
RANK_ID = "RANK_ID"
RANK_SIZE = "RANK_SIZE"
DEVICE_ID = "DEVICE_ID"
ASCEND_DEVICE_ID = "ASCEND_DEVICE_ID"
# Physical NPU ids the Ascend device plugin/runtime gave the container, comma-separated.
ASCEND_VISIBLE_DEVICES = "ASCEND_VISIBLE_DEVICES"

# Habana's device plugin: card indices, and module ids when it allocated a subset.
HABANA_VISIBLE_DEVICES = "HABANA_VISIBLE_DEVICES"
HABANA_VISIBLE_MODULES = "HABANA_VISIBLE_MODULES"
# Habana's TensorFlow bridge: the module id of the one card this process acquires.
HLS_MODULE_ID = "HLS_MODULE_ID"


def tf_config(environ: Mapping[str, str] | None = None) -> dict | None:
    """The parsed ``TF_CONFIG``, or None when unset or empty."""
    raw = (environ if environ is not None else os.environ).get(TF_CONFIG, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{TF_CONFIG} is not valid JSON: {exc}") from exc
    return value if isinstance(value, dict) else None


def tf_config_workers(environ: Mapping[str, str] | None = None) -> int:
    """Number of workers (chief included) that ``TF_CONFIG`` lists; 1 without it."""
    config = tf_config(environ)
    if not config:
        return 1
    cluster = config.get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")) or 1


def tf_config_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank in ``TF_CONFIG``: the chief is 0 and, when the cluster has a chief,
    worker ``i`` is ``i + 1`` (TensorFlow's own order); 0 without ``TF_CONFIG``."""
    config = tf_config(environ) or {}
    task = config.get("task", {})
    index = int(task.get("index", 0))
    if task.get("type") == "worker" and config.get("cluster", {}).get("chief"):
        return index + 1
    return index


def labels(rank: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Low-cardinality labels that identify this process in metrics."""
    env = environ if environ is not None else os.environ
    return {
        "job_name": env.get(JOB_NAME, ""),
        "job_namespace": env.get(JOB_NAMESPACE, ""),
        "rank": env.get(RANK, str(rank)),
    }
