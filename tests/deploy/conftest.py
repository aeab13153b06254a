"""The generators under deploy/ are scripts run with PYTHONPATH=deploy (the Makefile's
`dashboards` and `chart` targets), not installed packages: put deploy/ on the path for the tests
that import them."""

import sys

from devcluster.config import REPO_ROOT

DEPLOY = str(REPO_ROOT / "deploy")
if DEPLOY not in sys.path:
    sys.path.insert(0, DEPLOY)
