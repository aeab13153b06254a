"""Environment variables the trainer reads: the contract with the operator.

The names live in densenet_contract.env, which the operator's renderers import too; they are
re-exported here (``env.RANK_TABLE_FILE``, ...) with the functions that read them. The operator
sets the ``DENSENET_*`` variables on every trainer container. The others are set by the
cluster's own machinery (Kubeflow-style ``TF_CONFIG``, Ascend's hccl-controller and device
plugin, Habana's device plugin) and keep their upstream names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from densenet_contract import metrics as contract_metrics
from densenet_contract.env import (
    ASCEND_DEVICE_ID,
    ASCEND_VISIBLE_DEVICES,
    DEVICE_ID,
    HABANA_VISIBLE_DEVICES,
    HABANA_VISIBLE_MODULES,
    HLS_MODULE_ID,
    JOB_IDENTITY,
    JOB_NAME,
    JOB_NAMESPACE,
    LOCAL_RANK,
    RANK,
    RANK_ID,
    RANK_SIZE,
    RANK_TABLE_FILE,
    TF_CONFIG,
)

from .errors import UserError

__all__ = [
    "ASCEND_DEVICE_ID",
    "ASCEND_VISIBLE_DEVICES",
    "DEVICE_ID",
    "HABANA_VISIBLE_DEVICES",
    "HABANA_VISIBLE_MODULES",
    "HLS_MODULE_ID",
    "JOB_IDENTITY",
    "JOB_NAME",
    "JOB_NAMESPACE",
    "LOCAL_RANK",
    "RANK",
    "RANK_ID",
    "RANK_SIZE",
    "RANK_TABLE_FILE",
    "TF_CONFIG",
    "job_identity",
    "labels",
    "tf_config",
    "tf_config_rank",
    "tf_config_workers",
]


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
        contract_metrics.JOB_NAME_LABEL: env.get(JOB_NAME, ""),
        contract_metrics.JOB_NAMESPACE_LABEL: env.get(JOB_NAMESPACE, ""),
        contract_metrics.RANK_LABEL: env.get(RANK, str(rank)),
    }


def job_identity(environ: Mapping[str, str] | None = None) -> str | None:
    """The job's identity (``<namespace>/<name>``, opaque here) that claims --log_dir; None
    when unset or empty (plain command-line use: no claim)."""
    value = (environ if environ is not None else os.environ).get(JOB_IDENTITY, "").strip()
    return value or None
