"""Fixtures of the end-to-end tests: the CRD, a Jobs helper in a fresh namespace."""

from __future__ import annotations

import pytest

from tests.images.conftest import operator_image, trainer_image  # noqa: F401 - the node runs them
from tests.operator.conftest import densenet_crd  # noqa: F401 - the session's CRD fixture
from tests.operator.harness import Jobs
from tests.operator.kueue_setup import kueue, priorities, quota  # noqa: F401 - fixtures
from tests.real_node import fake_dir, real_node  # noqa: F401 - fixtures


@pytest.fixture
def jobs(api_client, namespace, densenet_crd) -> Jobs:  # noqa: F811
    return Jobs(api_client, namespace)
