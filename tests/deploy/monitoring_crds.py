"""The Prometheus Operator's CRDs (monitoring.coreos.com) at the version pinned in
hack/versions.env, taken from its Go module on the module proxy and cached per version, the way
hack/build-binaries.sh caches the control plane's binaries.

`go mod download` fetches the module (it shares Go's module cache, so a second call is free);
the CRD files are its `example/prometheus-operator-crd/*.yaml`, copied into
`<cache>/prometheus-operator-crds-<version>/` so later runs need neither go nor the network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from devcluster.cluster import read_versions
from devcluster.config import cache_root

MODULE = "github.com/prometheus-operator/prometheus-operator"
CRD_DIR_IN_MODULE = "example/prometheus-operator-crd"
VERSION_KEY = "PROMETHEUS_OPERATOR_VERSION"


class CrdFetchError(RuntimeError):
    """The CRDs are not cached and could not be fetched; the message says how to fix it."""


def pinned_version() -> str:
    versions = read_versions()
    if VERSION_KEY not in versions:
        raise CrdFetchError(f"hack/versions.env has no {VERSION_KEY}=vX.Y.Z line")
    return versions[VERSION_KEY]


def crd_dir(version: str | None = None) -> Path:
    """Directory holding the monitoring.coreos.com CRD files of `version` (default: pinned)."""
    version = version or pinned_version()
    cached = cache_root() / f"prometheus-operator-crds-{version}"
    if any(cached.glob("*.yaml")):
        return cached
    go = shutil.which("go")
    if go is None:
        raise CrdFetchError(
            f"{cached} is empty and `go` is missing: install Go (see README) to fetch "
            f"{MODULE}@{version} from the module proxy"
        )
    with tempfile.TemporaryDirectory() as scratch:  # outside any module: no go.mod is touched
        result = subprocess.run(
            [go, "mod", "download", "-json", f"{MODULE}@{version}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if result.returncode != 0:
        raise CrdFetchError(f"go mod download {MODULE}@{version} failed: {result.stderr.strip()}")
    source = Path(json.loads(result.stdout)["Dir"]) / CRD_DIR_IN_MODULE
    files = sorted(source.glob("*.yaml"))
    if not files:
        raise CrdFetchError(f"{MODULE}@{version} has no {CRD_DIR_IN_MODULE}/*.yaml")
    staging = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in files:
        shutil.copyfile(file, staging / file.name)  # module cache files are read-only
    shutil.rmtree(cached, ignore_errors=True)
    staging.rename(cached)
    return cached
