"""The trainer image's user, which the operator's pods name (runAsUser, runAsGroup, fsGroup) and
whose HOME they keep writable, is the one Dockerfile.trainer builds: read as text, since the
Dockerfile cannot import densenet_contract."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from densenet_contract import image

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile.trainer").read_text()
CRD = REPO / "crds" / "densenet.dev_densenettrainingjobs.yaml"


def test_dockerfile_builds_the_contracts_user_group_and_home() -> None:
    (uid,) = re.findall(r"^ARG UID=(\d+)$", DOCKERFILE, re.M)
    assert int(uid) == image.TRAINER_UID
    (user,) = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user == "${UID}:${UID}"  # so the image's group id is its user id
    assert image.TRAINER_GID == image.TRAINER_UID
    assert re.search(rf"^\s+HOME={re.escape(image.TRAINER_HOME)} ", DOCKERFILE, re.M)


def test_crd_says_which_user_an_unset_security_context_means() -> None:
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    fields = spec["template"]["properties"]["securityContext"]["properties"]
    for name in ("runAsUser", "runAsGroup"):
        assert f"Unset: {image.TRAINER_UID}," in fields[name]["description"], name
