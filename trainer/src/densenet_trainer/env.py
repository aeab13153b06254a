"""Environment variables the trainer reads: the contract with the operator.

The names live in densenet_contract.env, which the operator's renderers import too; they are
re-exported here (``env.RANK_TABLE_FILE``, ...) with the functions that read them. The operator
sets the ``DENSENET_*`` variables on every trainer container. The others are set by the
cluster's own machinery (Kubeflow-style ``TF_CONFIG``, Ascend's hccl-controller and device
plugin, Habana's device plugin) and keep their upstream names.

``TF_CONFIG`` is read through :func:`tf_config`: the environment's when it names a cluster,
else assembled from the operator's cluster file (``DENSENET_TF_CLUSTER_FILE``) and this
process's task (``DENSENET_TF_TASK_TYPE``/``_INDEX``). :func:`export_tf_config` puts the
assembled text into ``os.environ`` before TensorFlow reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping

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
    TF_CLUSTER_FILE,
    TF_CONFIG,
    TF_TASK_INDEX,
    TF_TASK_TYPE,
    TF_TASK_WORKER,
    tf_config_text,
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
    "TF_CLUSTER_FILE",
    "TF_CONFIG",
    "TF_TASK_INDEX",
    "TF_TASK_TYPE",
    "assembles_tf_config",
    "export_tf_config",
    "job_identity",
    "labels",
    "tf_config",
    "tf_config_json",
    "tf_config_rank",
    "tf_config_workers",
]


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return environ if environ is not None else os.environ


def _given_tf_config(env: Mapping[str, str]) -> dict | None:
    """The environment's own ``TF_CONFIG``, parsed; None when unset or empty."""
    raw = env.get(TF_CONFIG, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{TF_CONFIG} is not valid JSON: {exc}") from exc
    return value if isinstance(value, dict) else None


def assembles_tf_config(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``TF_CONFIG`` comes from the cluster file: the file is named and the
    environment has no ``TF_CONFIG`` of its own that names a cluster (that one wins)."""
    env = _environ(environ)
    if not env.get(TF_CLUSTER_FILE, "").strip():
        return False
    given = _given_tf_config(env)
    return not (given and "cluster" in given)


def _assembled_text(env: Mapping[str, str]) -> str:
    path = env[TF_CLUSTER_FILE].strip()
    try:
        with open(path, encoding="utf-8") as f:
            cluster = json.load(f)
    except OSError as exc:
        raise UserError(
            f"{TF_CLUSTER_FILE}={path}: cannot read the job's TF cluster file: "
            f"{exc.strerror or exc}; check the pod's volume of the ConfigMap <job>-tf-cluster"
        ) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{TF_CLUSTER_FILE}={path} is not valid JSON: {exc}") from None
    if not isinstance(cluster, dict):
        raise UserError(f"{TF_CLUSTER_FILE}={path} must hold a JSON object (TF_CONFIG's cluster)")
    task_type = env.get(TF_TASK_TYPE, "").strip() or TF_TASK_WORKER
    raw_index = env.get(TF_TASK_INDEX, "").strip()
    try:
        index = int(raw_index)
    except ValueError:
        raise UserError(
            f"{TF_TASK_INDEX}={raw_index!r} is not an integer; {TF_CLUSTER_FILE} needs this "
            "process's task index"
        ) from None
    if not 0 <= index < len(cluster.get(task_type, [])):
        raise UserError(
            f"{TF_TASK_INDEX}={index} but {TF_CLUSTER_FILE}={path} lists "
            f"{len(cluster.get(task_type, []))} {task_type!r} task(s)"
        )
    return tf_config_text(cluster, task_type, index)


def tf_config_json(environ: Mapping[str, str] | None = None) -> str | None:
    """``TF_CONFIG``'s text as TensorFlow must see it: the environment's own when it names a
    cluster (or when there is no cluster file), else assembled from the cluster file and the
    task variables, byte for byte what the operator used to put on the pod. None when there
    is neither."""
    env = _environ(environ)
    if assembles_tf_config(env):
        return _assembled_text(env)
    raw = env.get(TF_CONFIG, "").strip()
    return raw or None


def tf_config(environ: Mapping[str, str] | None = None) -> dict | None:
    """The parsed ``TF_CONFIG`` (see :func:`tf_config_json`), or None when there is none."""
    env = _environ(environ)
    if assembles_tf_config(env):
        return json.loads(_assembled_text(env))
    return _given_tf_config(env)


def export_tf_config(environ: MutableMapping[str, str] | None = None) -> None:
    """Put the assembled ``TF_CONFIG`` into this process's environment, where TensorFlow's
    cluster resolver reads it; a ``TF_CONFIG`` already there that names a cluster is left
    alone. Set in-process, not passed through exec: the 128 KiB limit on one environment
    string does not apply (but ``kubectl exec ... env`` and ``/proc/<pid>/environ`` show the
    environment the process started with, without it)."""
    env = os.environ if environ is None else environ
    if assembles_tf_config(env):
        env[TF_CONFIG] = _assembled_text(env)


def tf_config_workers(environ: Mapping[str, str] | None = None) -> int:
    """Number of workers (chief included) that ``TF_CONFIG`` lists; 1 without it."""
    config = tf_config(environ)
    if not config:
        return 1
    cluster = config.get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")) or 1


def tf_config_peers(environ: Mapping[str, str] | None = None) -> list[str]:
    """The other processes' ``host:port`` in ``TF_CONFIG`` (chief and workers, not this
    task); empty without it."""
    config = tf_config(environ) or {}
    cluster, task = config.get("cluster", {}), config.get("task", {})
    own = (task.get("type"), int(task.get("index", 0)))
    return [
        address
        for kind in ("chief", "worker")
        for index, address in enumerate(cluster.get(kind, []))
        if (kind, index) != own
    ]


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
