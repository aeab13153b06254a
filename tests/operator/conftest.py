"""The DenseNetTrainingJob CRD installed once per run on the local cluster."""

from __future__ import annotations

import pytest
from kubernetes import client as kube_client

from densenet_operator import schema
from tests.kubectl import kubectl
from tests.operator.harness import Jobs, OperatorProcess
from tests.operator.jobs import REPO
from tests.operator.kueue_setup import kueue, priorities, quota  # noqa: F401 - fixtures
from tests.polling import eventually
from tests.real_node import fake_dir, real_node  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def densenet_crd(cluster, api_client) -> str:
    kubectl(cluster, "apply", "-f", str(REPO / "crds"), check=True)
    extensions = kube_client.ApiextensionsV1Api(api_client)
    name = f"{schema.PLURAL}.{schema.GROUP}"

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established, what="the DenseNetTrainingJob CRD to be Established")
    return name


@pytest.fixture
def jobs(api_client, namespace, densenet_crd) -> Jobs:
    return Jobs(api_client, namespace)


@pytest.fixture
def operator(cluster, namespace, densenet_crd, tmp_path):
    processes: list[OperatorProcess] = []

    def start(*args: str) -> OperatorProcess:
        process = OperatorProcess(cluster, namespace, tmp_path, *args).start()
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
