"""The generators under deploy/ are scripts run with PYTHONPATH=deploy (the Makefile's
`dashboards` and `chart` targets), not installed packages: put deploy/ on the path for the tests
that import them."""

import sys

from devcluster.config import REPO_ROOT

DEPLOY = str(REPO_ROOT / "deploy")
if DEPLOY not in sys.path:
    sys.path.insert(0, DEPLOY)


# The CRDs the cluster tests need (imported after deploy/ is on the path).
from tests.deploy.cluster_fixtures import chart_crds, monitoring_crds  # noqa: E402, F401

# The images `make images` built: the chart's end-to-end test runs them on the real node.
from tests.images.conftest import operator_image, trainer_image  # noqa: E402, F401
from tests.real_node import fake_dir, real_node  # noqa: E402, F401 - fixtures
