"""The vendor route of Dockerfile.trainer and images/Dockerfile.vendor, built for real on a
stand-in for a vendor's image: the project's Python base without TensorFlow (the vendors' own
images are on no registry reachable here). What it proves: the vendor lock and the
system-site-packages venv build, the shims come first on PATH and load the vendor's
environment, and a trainer that finds no TensorFlow says so in one line with exit 5 (no device
stack), which the operator turns into Failed MissingDevice instead of restarting."""

from __future__ import annotations

import os
import subprocess

from densenet_contract.exitcodes import ExitCode
from tests.images.conftest import REPO, Image


def build(image: Image, *args: str) -> None:
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    ca = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    secret = ["--secret", f"id=pip-ca,src={ca}"] if os.path.exists(ca) else []
    result = subprocess.run(
        [image.docker, "build", "--progress", "plain", *secret, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def test_vendor_route_builds_and_fails_cleanly_without_the_vendor_stack(trainer_image: Image):
    base = trainer_image.inspect()["Config"]["Labels"]["org.opencontainers.image.base.name"]
    standin = Image("densenet-trainer:vendor-standin", trainer_image.docker)
    build(
        standin, "-f", "Dockerfile.trainer", "-t", f"{standin.name}-base",
        "--build-arg", f"BASE_IMAGE={base}",
        "--build-arg", "TRAINER_LOCK=requirements/trainer-vendor.lock",
        "--build-arg", "VENV_ARGS=--system-site-packages", ".",
    )  # fmt: skip
    build(
        standin, "-f", "images/Dockerfile.vendor", "-t", standin.name,
        "--build-arg", f"TRAINER_IMAGE={standin.name}-base", "--build-arg", "VENDOR=gaudi",
        "images",
    )  # fmt: skip
    try:
        where = standin.run("-c", "command -v densenet-train", entrypoint="sh")
        assert where.stdout.strip() == "/opt/densenet/bin/densenet-train", where.stderr
        result = standin.run(
            "--device", "hpu", "--synthetic", "--max_train_steps", "1", "--log_dir", "/tmp/m",
            "--metrics_port", "0",
        )  # fmt: skip
        assert result.returncode == ExitCode.MISSING_DEVICE, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines[-1].startswith("densenet-train: error: no TensorFlow"), result.stderr
        assert "Traceback" not in result.stderr
    finally:
        standin.cli("rmi", standin.name, f"{standin.name}-base")
