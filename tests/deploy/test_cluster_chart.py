"""The chart against the real local API server: every rendered object passes a server-side dry
run with the DenseNetTrainingJob CRD and the pinned Prometheus Operator's CRDs installed, and a
real `helm install` with a bad value is refused before anything is created."""

from __future__ import annotations

import copy

import pytest
import yaml
from kubernetes import client as kube_client

from tests.deploy.tools import CHART, by_kind, helm, one, render, run
from tests.kubectl import kubectl

pytestmark = pytest.mark.cluster

MONITORING_API = ("--api-versions", "monitoring.coreos.com/v1")


def dry_run(cluster, objects: list[dict]):
    return kubectl(
        cluster, "apply", "--dry-run=server", "-o", "name", "-f", "-",
        stdin=yaml.safe_dump_all(objects),
    )  # fmt: skip


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced"])
def test_rendered_chart_passes_server_side_dry_run(
    cluster, namespace, chart_crds, monitoring_crds, scope
):
    values = ["--set", f"watchNamespaces={{{namespace}}}"] if scope == "namespaced" else []
    objects = render(*MONITORING_API, *values, namespace=namespace)
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Deployment"} <= kinds
    result = dry_run(cluster, objects)
    assert result.returncode == 0, result.stderr
    accepted = result.stdout.split()
    assert len(accepted) == len(objects), (accepted, [o["kind"] for o in objects])


def test_the_dry_run_does_validate_monitors(cluster, namespace, chart_crds, monitoring_crds):
    """A monitor the Prometheus Operator's schema refuses is refused here too, naming the field
    (so the passing dry run above is a real check)."""
    objects = render(*MONITORING_API, namespace=namespace)
    broken = copy.deepcopy(one(objects, "PodMonitor"))
    broken["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    result = dry_run(cluster, [broken])
    assert result.returncode != 0
    assert "spec.podMetricsEndpoints[0].interval" in result.stderr, result.stderr
    rule = copy.deepcopy(one(objects, "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["expr"] = {"not": "a string"}
    result = dry_run(cluster, [rule])
    assert result.returncode != 0 and "expr" in result.stderr, result.stderr
    assert by_kind(objects, "ServiceMonitor")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("watchNamespaces={Team_A}", "at '/watchNamespaces/0'"),
        ("imagee.tag=1", "additional properties 'imagee' not allowed"),
    ],
)
@pytest.mark.usefixtures("chart_crds")
def test_helm_install_refuses_bad_values_and_creates_nothing(
    cluster, namespace, api_client, value, message
):
    result = run(
        helm(), "install", "dn", str(CHART), "--kubeconfig", str(cluster.kubeconfig),
        "--namespace", namespace, "--set", value,
    )  # fmt: skip
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr
    listed = run(helm(), "list", "-q", "--kubeconfig", str(cluster.kubeconfig), "-n", namespace)
    assert listed.returncode == 0 and listed.stdout.strip() == ""
    apps = kube_client.AppsV1Api(api_client)
    assert apps.list_namespaced_deployment(namespace).items == []
