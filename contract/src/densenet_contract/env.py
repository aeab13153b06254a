"""Environment variable names of a trainer container: what the operator's renderers set and
the trainer and densenet-launch read.

The ``DENSENET_*`` names are ours. The others keep their upstream names: Kubeflow-style
``TF_CONFIG``, the Ascend stack's (hccl-controller, device plugin, CANN) and Habana's (device
plugin, TensorFlow bridge).
"""

from __future__ import annotations

import json
from typing import Any

# Set by the operator on every trainer container; they only label metrics and logs.
JOB_NAME = "DENSENET_JOB_NAME"
JOB_NAMESPACE = "DENSENET_JOB_NAMESPACE"
# Set by the operator: the job's identity, "<namespace>/<name>" (opaque to the trainer). When
# set, the trainer claims its --log_dir with a marker file (.densenet-job) holding it, and stops
# (exit 2) in a directory another identity claimed: two jobs never share checkpoints.
JOB_IDENTITY = "DENSENET_JOB_IDENTITY"
# Global rank of the pod's first process (0 = chief); densenet-launch's default --rank-offset
# and, on each child, that child's own global rank.
RANK = "DENSENET_RANK"
# Set by densenet-launch on each child: its index among the processes of its pod.
LOCAL_RANK = "DENSENET_LOCAL_RANK"

# TensorFlow multi-worker (CPU/GPU/Gaudi): {"cluster": {"worker": [...]}, "task": {...}}.
TF_CONFIG = "TF_CONFIG"

# The operator does not put TF_CONFIG, which lists every process of the job, on each pod: a
# 128x8 Gaudi job's would be ~196 KB, over Linux's 128 KiB limit for one environment string
# (MAX_ARG_STRLEN), and N pods would carry N copies. It writes TF_CONFIG's "cluster" once, as
# JSON in the job's ConfigMap <job>-tf-cluster (key TF_CLUSTER_KEY), mounts it at
# TF_CLUSTER_DIR, and gives each pod the file's path and its own task (densenet-launch gives
# each child its own TF_TASK_INDEX). densenet-train assembles TF_CONFIG from them
# (tf_config_text) into its own environment before TensorFlow reads it; a TF_CONFIG already in
# the environment that names a cluster wins.
TF_CLUSTER_FILE = "DENSENET_TF_CLUSTER_FILE"
TF_TASK_TYPE = "DENSENET_TF_TASK_TYPE"
TF_TASK_INDEX = "DENSENET_TF_TASK_INDEX"
TF_CLUSTER_DIR = "/etc/densenet/tf-cluster"
TF_CLUSTER_KEY = "cluster.json"
TF_CLUSTER_PATH = f"{TF_CLUSTER_DIR}/{TF_CLUSTER_KEY}"
TF_TASK_WORKER = "worker"


def tf_cluster_text(cluster: dict[str, Any]) -> str:
    """The cluster file's content: TF_CONFIG's "cluster" object, compact JSON."""
    return json.dumps(cluster, separators=(",", ":"))


def tf_config_text(cluster: dict[str, Any], task_type: str, index: int) -> str:
    """TF_CONFIG in Kubeflow TFJob's format, byte for byte what the operator put on each pod
    before the cluster moved to a file: the cluster, then this process's task."""
    config = {"cluster": cluster, "task": {"type": task_type, "index": index}}
    return json.dumps(config, separators=(",", ":"))


# Ascend, one process per NPU. The operator sets RANK_TABLE_FILE, RANK_SIZE (devices in the
# job), RANK_ID (of the pod's first process) and JOB_ID; densenet-launch sets each child's
# RANK_ID, DEVICE_ID and ASCEND_DEVICE_ID.
RANK_TABLE_FILE = "RANK_TABLE_FILE"
RANK_ID = "RANK_ID"
RANK_SIZE = "RANK_SIZE"
DEVICE_ID = "DEVICE_ID"
ASCEND_DEVICE_ID = "ASCEND_DEVICE_ID"
JOB_ID = "JOB_ID"
# Physical NPU ids the Ascend device plugin/runtime gave the container, comma-separated.
ASCEND_VISIBLE_DEVICES = "ASCEND_VISIBLE_DEVICES"

# Habana's device plugin: card indices, and module ids when it allocated a subset.
HABANA_VISIBLE_DEVICES = "HABANA_VISIBLE_DEVICES"
HABANA_VISIBLE_MODULES = "HABANA_VISIBLE_MODULES"
# Habana's TensorFlow bridge: the module id of the one card this process acquires.
HLS_MODULE_ID = "HLS_MODULE_ID"

# Variables the operator and densenet-launch own: a job's spec.template.env may not set them
# (the CRD's CEL rule lists the same names; tests/contract checks it).
OPERATOR_OWNED = (
    JOB_NAME,
    JOB_NAMESPACE,
    RANK,
    LOCAL_RANK,
    TF_CONFIG,
    RANK_TABLE_FILE,
    RANK_SIZE,
    RANK_ID,
    DEVICE_ID,
    ASCEND_DEVICE_ID,
    JOB_ID,
)

# What a job's spec.template.env may not set besides OPERATOR_OWNED (the CRD's CEL rules spell
# out the same; tests/contract checks them): any name with our prefix, and the device lists
# of the device plugins and container runtimes (NVIDIA_VISIBLE_DEVICES=all would give a pod
# every GPU of its node, outside any quota), with Habana's module list and the module id
# densenet-launch derives from it.
OWN_PREFIX = "DENSENET_"
DEVICE_LIST_SUFFIX = "_VISIBLE_DEVICES"
DEVICE_OWNED = (HABANA_VISIBLE_MODULES, HLS_MODULE_ID)
