"""The images `make images` built, run for real by the Docker daemon. A missing daemon or image
fails the test (it never skips): `make test` builds the images first."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.operator.conftest import densenet_crd  # noqa: F401  (the CRD, installed once per run)
from tests.real_node import IMAGE_TAG

REPO = Path(__file__).resolve().parents[2]
TAG = IMAGE_TAG
UID = "10001"  # the Dockerfiles' ARG UID


def docker_client() -> str:
    """Debian's client talks to Debian's daemon; any `docker` on PATH will do for run/inspect."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or ""


@dataclass(frozen=True)
class Image:
    name: str
    docker: str

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The docker client, its output as text; the caller reads the return code."""
        return subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def inspect(self) -> dict:
        out = self.cli("image", "inspect", self.name)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)[0]

    def run(
        self, *args: str, entrypoint: str | None = None, network: str = "none",
        mounts: tuple[str, ...] = (), stdin: str | None = None, timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """`docker run` as the image's own user, with no network, a read-only root filesystem
        and a tmpfs at /tmp: how a hardened cluster runs it."""
        command = [self.docker, "run", "--rm", "-i", "--read-only", "--tmpfs", "/tmp",
                   "--network", network, "--cap-drop", "ALL",
                   "--security-opt", "no-new-privileges"]  # fmt: skip
        for mount in mounts:
            command += ["-v", mount]
        if entrypoint is not None:
            command += ["--entrypoint", entrypoint]
        return subprocess.run(
            [*command, self.name, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run("-c", code, entrypoint="/opt/venv/bin/python")


def _image(name: str) -> Image:
    docker = docker_client()
    if not docker:
        pytest.fail("no docker client: make system-packages")
    image = Image(f"{name}:{TAG}", docker)
    if image.cli("info").returncode != 0:
        pytest.fail("no Docker daemon answers: make docker-daemon (or bash hack/dockerd.sh start)")
    if image.cli("image", "inspect", image.name).returncode != 0:
        pytest.fail(f"{image.name} is not built: make images")
    return image


@pytest.fixture(scope="session")
def operator_image() -> Image:
    return _image("densenet-operator")


@pytest.fixture(scope="session")
def trainer_image() -> Image:
    return _image("densenet-trainer")
