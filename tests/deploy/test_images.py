"""The Dockerfiles as text (hadolint, pinned base, locked installs) and the vendor trainer images'
shims, run for real with stand-in vendor scripts. tests/images runs the built images."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.tools import REPO_ROOT, hadolint, run

IMAGES = REPO_ROOT / "images"
DOCKERFILES = ["Dockerfile.operator", "Dockerfile.trainer", "images/Dockerfile.vendor"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_clean(dockerfile: str) -> None:
    result = run(hadolint(), dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile.operator", "Dockerfile.trainer"])
def test_dockerfiles_pin_one_base_by_digest_and_install_only_locked_or_own_code(dockerfile):
    """What a reader of the Dockerfile relies on; tests/images checks the built images."""
    text = (REPO_ROOT / dockerfile).read_text()
    bases = {
        re.search(r"^ARG BASE_IMAGE=(\S+)$", (REPO_ROOT / name).read_text(), re.M).group(1)
        for name in ("Dockerfile.operator", "Dockerfile.trainer")
    }
    assert len(bases) == 1, f"the two Dockerfiles default to different bases: {bases}"
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}", bases.pop())
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    installs = [line for line in instructions if re.search(r"pip(\.whl/pip)? install", line)]
    assert installs, dockerfile
    # Every pip install either requires hashes (third-party, from a lock) or takes no index.
    for line in installs:
        assert "--require-hashes" in line or "--no-index" in line, line
    (user,) = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user == "${UID}:${UID}" and re.search(r"^ARG UID=(\d+)$", text, re.M).group(1) != "0"


def install_shims(tmp_path: Path, vendor_env: Path) -> tuple[Path, dict[str, str]]:
    """The vendor image's layout in a temporary directory: shims first on PATH, and a 'real'
    densenet-train behind them that reports what it received."""
    shims, real = tmp_path / "shims", tmp_path / "real"
    shims.mkdir()
    real.mkdir()
    for name in ("densenet-train", "densenet-launch"):
        (shims / name).symlink_to(IMAGES / "shim.sh")
    train = real / "densenet-train"
    train.write_text(
        "#!/bin/sh\n"
        'printf "PATH=%s\\n" "$PATH"\n'
        'printf "VENDOR=%s\\n" "${VENDOR_MARK:-}"\n'
        'printf "HABANA_LOGS=%s\\n" "${HABANA_LOGS:-}"\n'
        'printf "ASCEND_PROCESS_LOG_PATH=%s\\n" "${ASCEND_PROCESS_LOG_PATH:-}"\n'
        'for arg in "$@"; do printf "ARG=%s\\n" "$arg"; done\n'
        "exit 75\n"
    )
    train.chmod(train.stat().st_mode | stat.S_IXUSR)
    environ = {
        "PATH": f"{shims}:{real}:/usr/bin:/bin",
        "DENSENET_VENDOR_ENV": str(vendor_env),
        "HOME": str(tmp_path),
    }
    return shims, environ


def run_shim(shims: Path, environ: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(shims / "densenet-train"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_gaudi_shim_moves_habana_logs_and_runs_the_real_command(tmp_path: Path) -> None:
    shims, environ = install_shims(tmp_path, IMAGES / "gaudi" / "vendor-env.sh")
    environ["HABANA_LOGS"] = str(tmp_path / "habana")
    result = run_shim(shims, environ, "--device", "hpu", "--data_dir", "/data/with space")
    # The real command's exit code (75: preempted) comes back unchanged.
    assert result.returncode == 75, result.stderr
    lines = result.stdout.splitlines()
    assert f"HABANA_LOGS={tmp_path / 'habana'}" in lines
    assert (tmp_path / "habana").is_dir()
    assert [line for line in lines if line.startswith("ARG=")] == [
        "ARG=--device",
        "ARG=hpu",
        "ARG=--data_dir",
        "ARG=/data/with space",
    ]
    # The shim took itself off PATH, so children find the real commands directly.
    (path,) = [line for line in lines if line.startswith("PATH=")]
    assert str(shims) not in path.split("=", 1)[1].split(":")


def test_ascend_shim_sources_the_cann_environment(tmp_path: Path) -> None:
    toolkit = tmp_path / "ascend-toolkit"
    toolkit.mkdir()
    # Like CANN's own script: reads unset variables, which must not trip the shim's `set -u`.
    (toolkit / "set_env.sh").write_text(
        'export LD_LIBRARY_PATH="$ASCEND_HOME_UNSET/lib:$LD_LIBRARY_PATH"\n'
        "export VENDOR_MARK=cann\n"
    )
    shims, environ = install_shims(tmp_path, IMAGES / "ascend" / "vendor-env.sh")
    environ["ASCEND_TOOLKIT_HOME"] = str(toolkit)
    result = run_shim(shims, environ, "--device", "npu")
    assert result.returncode == 75, result.stderr
    lines = result.stdout.splitlines()
    assert "VENDOR=cann" in lines
    assert "ASCEND_PROCESS_LOG_PATH=/tmp/ascend/log" in lines
    assert "ARG=npu" in lines


def test_shim_is_executable_in_the_repository() -> None:
    assert os.access(IMAGES / "shim.sh", os.X_OK)
