"""The operator's cluster ConfigMap and pod environment, mounted as the kubelet would, give
every trainer process the TF_CONFIG the operator used to render into each pod: the worker list
of the job (written here by hand from the job's names) and the process's own index, byte for
byte in the old format. Nothing a pod or a densenet-launch child gets through exec grows with
the job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from densenet_operator import schema
from densenet_operator.job import Job
from densenet_operator.render import render
from densenet_trainer import env as trainer_env
from densenet_trainer.launch import plan as launch
from tests.contract.pods import container_environ

IMAGE = "registry.test/densenet-trainer:1"
# One environment string's limit (MAX_ARG_STRLEN), "NAME=value" and its NUL included.
MAX_ARG_STRLEN = 128 * 1024


def _job(kind: str, replicas: int, per_pod: int, name: str, namespace: str) -> Job:
    spec = {
        "replicas": replicas,
        "accelerator": {"type": kind, "perPod": per_pod},
        "dataset": {"format": "synthetic"},
        "template": {"resources": {"requests": {"memory": "1Gi"}}},
    }
    obj = {"apiVersion": schema.API_VERSION, "kind": schema.KIND, "metadata": {"name": name}}
    return Job.from_object(schema.apply({**obj, "spec": spec}), namespace)


def _old_tf_config(workers: list[str], index: int) -> str:
    """The value the operator used to set as each pod's TF_CONFIG (Kubeflow TFJob format)."""
    config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    return json.dumps(config, separators=(",", ":"))


def _processes(pod: dict, environ: dict[str, str], per_pod: int) -> list[dict[str, str]]:
    """Each trainer process's environment: the container's, or each launcher child's."""
    command = pod["spec"]["containers"][0]["command"]
    if command[0] != launch.PROG:
        return [environ]
    plan = launch.parse(command[1:], environ)
    assert plan.nproc == per_pod
    return [launch.child_env(environ, plan, j) for j in range(plan.nproc)]


def _exec_sizes(environ: dict[str, str]) -> int:
    return max(len(k) + len(v) + 2 for k, v in environ.items())


@pytest.mark.parametrize(
    "shape",
    [
        ("cpu", 3, 1, "smoke", "ns1"),
        ("nvidia", 2, 8, "n", "team-a"),
        ("gaudi", 2, 4, "g", "ns1"),
        # 128x8 Gaudi with the longest names: TF_CONFIG ~196 KB, as one variable over the limit
        ("gaudi", 128, 8, "j" * 52, "n" * 63),
    ],
    ids=["cpu", "nvidia", "gaudi", "gaudi-128x8-long-names"],
)
def test_every_trainer_process_assembles_the_tf_config_it_used_to_get(
    shape: tuple[str, int, int, str, str], tmp_path: Path
) -> None:
    kind, replicas, per_pod, name, namespace = shape
    job = _job(kind, replicas, per_pod, name, namespace)
    manifests = render(job, IMAGE)
    ports = [2222] if kind != "gaudi" else [2410 + j for j in range(per_pod)]
    workers = [
        f"{name}-worker-{i}.{name}.{namespace}.svc:{p}" for i in range(replicas) for p in ports
    ]
    processes = per_pod if kind == "gaudi" else 1
    checked = 0
    for index, pod in enumerate(manifests.pods):
        pod_environ = container_environ(pod, manifests.config_maps, tmp_path / str(index))
        assert "TF_CONFIG" not in pod_environ
        assert _exec_sizes(pod_environ) < 4096  # the container's own exec
        for local_rank, environ in enumerate(_processes(pod, pod_environ, processes)):
            assert _exec_sizes(environ) < 4096  # a launcher child's exec
            rank = index * processes + local_rank
            want = _old_tf_config(workers, rank)
            trainer_env.export_tf_config(environ)  # what densenet-train does first
            assert environ["TF_CONFIG"] == want
            checked += 1
    assert checked == len(workers)
    if replicas == 128:
        assert len(want) + len("TF_CONFIG=") + 1 > MAX_ARG_STRLEN  # why it is not on the pod


def test_ascend_pods_get_no_tf_config(tmp_path: Path) -> None:
    manifests = render(_job("ascend", 2, 8, "a", "ns1"), IMAGE)
    for pod in manifests.pods:
        environ = container_environ(pod, manifests.config_maps, tmp_path)
        assert trainer_env.tf_config_json(environ) is None
