"""What `devcluster up --with kueue` applies, from the manifests staged out of the pinned Kueue
module: only the webhooks of what the configuration enables (pods, Kueue's own objects), each
reached on loopback with the cluster's CA, the pod ones kept out of Kueue's unmanaged
namespaces as Kueue's kustomization does; the CRDs Kueue converts get its /convert webhook."""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster import cluster as devcluster
from devcluster import config, kueue
from devcluster.config import ClusterPaths

CA = b"-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"
LOOPBACK = f"https://127.0.0.1:{config.KUEUE_WEBHOOK_PORT}/"


@pytest.fixture(scope="module")
def staged() -> Path:
    path = kueue.manifests_dir(devcluster.read_versions()["KUEUE_VERSION"])
    if not (path / "webhooks.yaml").exists():
        pytest.fail(f"Kueue's manifests are not staged in {path}: run make binaries")
    return path


def test_only_the_enabled_webhooks_each_on_loopback(staged: Path) -> None:
    configurations = kueue.webhook_configurations(staged, CA)
    assert {c["metadata"]["name"] for c in configurations} == {
        "kueue-mutating-webhook-configuration",
        "kueue-validating-webhook-configuration",
    }
    webhooks = [w for c in configurations for w in c["webhooks"]]
    names = {w["name"] for w in webhooks}
    assert {"mpod.kb.io", "vpod.kb.io", "mclusterqueue.kb.io", "vworkload.kb.io"} <= names
    assert not names & {"mjob.kb.io", "mrayjob.kb.io", "mdeployment.kb.io", "mpytorchjob.kb.io"}
    for webhook in webhooks:
        assert webhook["clientConfig"]["url"].startswith(LOOPBACK), webhook
        assert "service" not in webhook["clientConfig"]
        assert webhook["clientConfig"]["caBundle"]
    pod_hooks = [w for w in webhooks if w["name"] in ("mpod.kb.io", "vpod.kb.io")]
    for webhook in pod_hooks:
        expression = webhook["namespaceSelector"]["matchExpressions"][0]
        assert expression["operator"] == "NotIn"
        assert set(expression["values"]) == {"kube-system", "kueue-system"}
        assert webhook["failurePolicy"] == "Fail"  # as Kueue ships it


def test_converted_crds_call_the_loopback_convert_webhook(staged: Path) -> None:
    crds = {c["spec"]["names"]["plural"]: c for c in kueue.crds(staged, CA)}
    assert {"workloads", "clusterqueues", "localqueues", "resourceflavors"} <= set(crds)
    conversion = crds["workloads"]["spec"]["conversion"]
    assert conversion["strategy"] == "Webhook"
    assert conversion["webhook"]["clientConfig"]["url"] == f"{LOOPBACK}convert"
    assert "conversion" not in crds["resourceflavors"]["spec"]


def test_configuration_is_the_plain_pod_one_on_loopback(tmp_path: Path) -> None:
    settings = kueue.configuration(ClusterPaths(tmp_path))
    assert settings["integrations"]["frameworks"] == ["pod"]
    assert settings["manageJobsWithoutQueueName"] is False
    selector = settings["managedJobsNamespaceSelector"]["matchExpressions"][0]
    assert set(selector["values"]) == {"kube-system", "kueue-system"}
    assert settings["webhook"]["host"] == "127.0.0.1"
    assert settings["health"]["healthProbeBindAddress"].startswith("127.0.0.1:")
    assert settings["metrics"]["bindAddress"] == "0"
