"""The two images as users run them: built by `make images`, run by Docker with no network, a
read-only root filesystem and their own non-root user."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.deploy.e2e import SEED_LINE
from tests.images.conftest import REPO, UID, Image
from tests.kubectl import kubectl
from tests.network import TINY_ARGS
from tests.operator.harness import FAST, Jobs
from tests.operator.jobs import on_kwok
from tests.polling import eventually

OPERATOR_MAX_BYTES = 200_000_000
# This repository's packages: built from its sources in the image, never taken from an index.
OWN = {"densenet-contract", "densenet-operator", "densenet-trainer"}
LOCKS = {"densenet-operator": ["operator.lock"], "densenet-trainer": ["trainer.lock"]}
DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: str) -> dict[str, str]:
    text = (REPO / "requirements" / lock).read_text()
    return {normalize(n): v for n, v in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}


def test_trainer_image_trains_five_steps_offline_read_only_as_its_user(trainer_image: Image):
    result = trainer_image.run(
        "--device", "cpu", "--synthetic", "--num_classes", "10", "--image_size", "32",
        "--batch_size", "4", "--max_train_steps", "5", "--iterations_per_loop", "1",
        "--display_every", "1", "--log_dir", "/tmp/model", "--metrics_port", "0",
        # The tests' small network: DenseNet-121 itself trains from this image in `make
        # demo`'s test (tests/e2e/test_demo.py), on the real node.
        *TINY_ARGS, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    steps = [int(step) for step in SEED_LINE.findall(result.stdout)]
    assert steps and steps[-1] == 5, result.stdout[-3000:]


def test_images_run_as_their_non_root_user(operator_image: Image, trainer_image: Image):
    for image in (operator_image, trainer_image):
        assert image.inspect()["Config"]["User"] == f"{UID}:{UID}"
        result = image.run("-u", entrypoint="id")
        assert result.stdout.strip() == UID, result.stderr


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_image_environment_is_exactly_the_lock_plus_our_own_wheels(
    name, operator_image, trainer_image
):
    image = operator_image if name == "densenet-operator" else trainer_image
    result = image.python(DISTRIBUTIONS)
    assert result.returncode == 0, result.stderr
    installed = {normalize(n): v for n, v in json.loads(result.stdout).items()}
    expected: dict[str, str] = {}
    for lock in LOCKS[name]:
        expected.update(locked(lock))
    unlocked = sorted(set(installed) - set(expected) - OWN)
    assert not unlocked, f"{name} holds packages no lock file names: {unlocked}"
    assert {n: installed.get(n) for n in expected} == expected
    own = {n for n in installed if n in OWN}
    assert own == {"densenet-contract", name}


def test_operator_image_has_no_tensorflow_no_compiler_and_is_small(operator_image: Image):
    assert operator_image.python("import tensorflow").returncode != 0
    found = operator_image.run(
        "-c", "for c in cc gcc g++ clang make; do command -v $c; done; true", entrypoint="sh"
    )
    assert found.returncode == 0 and found.stdout.strip() == "", found.stdout
    size = operator_image.inspect()["Size"]
    assert size < OPERATOR_MAX_BYTES, f"operator image is {size / 1e6:.0f} MB"


def test_operator_image_renders_the_cpu_example(operator_image: Image, cluster, namespace):
    example = (REPO / "examples" / "cpu-smoke.yaml").read_text()
    result = operator_image.run("render", "-f", "-", "-n", namespace, stdin=example)
    assert result.returncode == 0, result.stderr
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    pods = [obj for obj in objects if obj["kind"] == "Pod"]
    assert len(pods) == 2, [obj["kind"] for obj in objects]
    # Valid means the API server takes it: a server-side dry run of every Pod.
    for pod in pods:
        applied = kubectl(cluster, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
        assert applied.returncode == 0, applied.stderr
        assert pod["spec"]["containers"][0]["command"][0] == "densenet-train"


def test_operator_image_runs_a_job_on_kwok_nodes_to_running(
    operator_image: Image, cluster, namespace, densenet_crd, tmp_path
):
    # The API server listens on loopback: the container shares the host's network. The
    # kubeconfig goes in flattened (certificates inline) and readable by the image's user.
    flat = kubectl(cluster, "config", "view", "--flatten", "--minify", check=True).stdout
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(flat)
    kubeconfig.chmod(0o644)
    container = f"densenet-operator-{namespace}"
    command = [
        operator_image.docker, "run", "-d", "--name", container, "--read-only", "--tmpfs", "/tmp",
        "--network", "host", "--cap-drop", "ALL", "-e", "KUBECONFIG=/kube/config",
        "-v", f"{kubeconfig}:/kube/config:ro", operator_image.name,
        "run", "-n", namespace, "--liveness", "", "--metrics-port", "0", *FAST,
    ]  # fmt: skip
    started = operator_image.cli(*command[1:])
    assert started.returncode == 0, started.stderr
    try:
        jobs = Jobs(cluster.api_client(), namespace)
        jobs.create(on_kwok("in-container", "cpu", 1, replicas=2).build())

        def running() -> bool:
            state = operator_image.cli("inspect", "-f", "{{.State.Running}}", container)
            logs = operator_image.cli("logs", "--tail", "40", container)
            assert state.stdout.strip() == "true", logs.stdout + logs.stderr
            return jobs.status("in-container").get("phase") == "Running"

        eventually(running, timeout=90, what="the job Running under the containerised operator")
        assert len(jobs.pods("in-container")) == 2
    finally:
        operator_image.cli("rm", "-f", container)
