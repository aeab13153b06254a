"""Run the pinned kubectl (built by hack/build-binaries.sh) against the local cluster."""

from __future__ import annotations

import subprocess

from tests.conftest import LocalCluster


def kubectl(
    cluster: LocalCluster, *args: str, stdin: str | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    binary = cluster.paths.bin_dir / "kubectl"
    result = subprocess.run(
        [str(binary), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result
