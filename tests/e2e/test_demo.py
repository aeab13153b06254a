"""The README's first command, `make demo`, on the test session's cluster: `--keep` so that the
session's control plane stays up (the demo's `up` finds it running and starts its real node),
then the chart, the job and the node are removed here. What a newcomer reads is checked: the
images loaded, the install, a progress bar fed by the job's status, Succeeded, the validation
top-1 and where things are."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from densenet_contract import labels
from devcluster import cluster as devcluster
from devcluster import realnode
from devcluster.demo import Demo
from tests.images.conftest import Image

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PROGRESS = re.compile(
    r"Running +\[[#.]{30}\] +([0-9.]+)% step (\d+)/120 +([0-9.]+) img/s +loss [0-9.]+ +ETA \S+"
)
TOP1 = re.compile(r"validation top-1 ([0-9.]+)%")


def test_make_demo_trains_through_the_operator_and_reports(
    cluster, core_v1, operator_image: Image, trainer_image: Image
):
    try:
        done = subprocess.run(
            [sys.executable, "-m", "devcluster.demo", "--keep"],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        out = done.stdout
        assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
        assert f"loading {operator_image.name} and {trainer_image.name}" in out, out
        assert re.search(r"operator Ready after [0-9.]+s", out), out
        progress = PROGRESS.findall(out)
        assert progress, out
        assert all(float(fps) >= 0 for _, _, fps in progress)
        steps = [int(step) for _, step, _ in progress]
        assert steps == sorted(steps), out  # the bar only moves forward
        assert re.search(r"Succeeded +\[#{30}\] 100\.0% step 120/120", out), out
        top1 = TOP1.search(out)
        assert top1 and float(top1[1]) >= 50, out  # chance is 10 %
        assert "kubectl logs -n default digits-worker-0" in out
        assert "kept running" in out
        # Its workers ran in containers on the real node (they stay, Succeeded, until removed).
        pods = core_v1.list_namespaced_pod("default", label_selector=f"{labels.JOB}=digits").items
        assert {p.spec.node_name for p in pods} == {realnode.NAME}, pods
        assert len(pods) == 2 and all(
            s.container_id.startswith("containerd://")
            for p in pods
            for s in p.status.container_statuses
        ), pods
    finally:
        demo = Demo(cluster.paths)
        demo.connect(cluster.kubeconfig)
        demo.job_name = "digits"  # examples/cpu-digits.yaml
        demo.remove_product()
        devcluster.stop_node(cluster.paths)
