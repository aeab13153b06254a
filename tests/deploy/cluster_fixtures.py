"""Session fixtures of the chart's cluster tests: the CRDs installed on the local cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from tests.deploy.monitoring_crds import CrdFetchError, crd_dir
from tests.deploy.tools import CHART
from tests.kubectl import kubectl
from tests.polling import eventually

VERSION_ANNOTATION = "operator.prometheus.io/version"


def _wanted(directory: Path) -> dict[str, dict[str, str]]:
    """CRD name -> its annotations, for every file of `directory`."""
    wanted = {}
    for path in sorted(directory.glob("*.yaml")):
        # BaseLoader: the Prometheus Operator's CRDs hold a bare `=` (an enum value) that
        # safe_load refuses.
        metadata = yaml.load(path.read_text(), Loader=yaml.BaseLoader)["metadata"]
        wanted[metadata["name"]] = metadata.get("annotations") or {}
    return wanted


def _install(cluster, api_client, directory: Path, skip_if_version_matches: bool) -> list[str]:
    extensions = kube_client.ApiextensionsV1Api(api_client)
    wanted = _wanted(directory)

    def served(check_version: bool) -> bool:
        for name, wanted_annotations in wanted.items():
            try:
                crd = extensions.read_custom_resource_definition(name)
            except ApiException as err:
                if err.status == 404:
                    return False
                raise
            conditions = crd.status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
            have = (crd.metadata.annotations or {}).get(VERSION_ANNOTATION)
            if check_version and have != wanted_annotations.get(VERSION_ANNOTATION):
                return False
        return True

    # The Prometheus Operator stamps its version on each CRD; re-applying all ten (~3 MB of
    # schema) costs ~30 s on two busy cores, so an exact match is left alone.
    if not (skip_if_version_matches and served(check_version=True)):
        # Server-side apply: client-side apply's last-applied annotation cannot hold them.
        kubectl(
            cluster, "apply", "--server-side", "--force-conflicts", "-f", str(directory),
            check=True,
        )  # fmt: skip
        eventually(lambda: served(False), what=f"the CRDs of {directory} to be Established")
    return sorted(wanted)


@pytest.fixture(scope="session")
def monitoring_crds(cluster, api_client) -> list[str]:
    """monitoring.coreos.com CRDs of the pinned Prometheus Operator (hack/versions.env)."""
    try:
        directory = crd_dir()
    except CrdFetchError as err:
        pytest.fail(str(err))
    return _install(cluster, api_client, directory, skip_if_version_matches=True)


@pytest.fixture(scope="session")
def chart_crds(cluster, api_client) -> list[str]:
    """The chart's own crds/ (the DenseNetTrainingJob CRD), applied as they are now."""
    return _install(cluster, api_client, CHART / "crds", skip_if_version_matches=False)
