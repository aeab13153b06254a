"""A rendered pod's trainer container as a process in it would see it, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def container_environ(
    pod: dict[str, Any], config_maps: list[dict[str, Any]], root: Path
) -> dict[str, str]:
    """The container's environment, with the pod's ConfigMap volumes written under ``root``
    as the kubelet mounts them (one file per key at mountPath/key) and every variable that
    names a path inside such a mount pointed at the copy."""
    (container,) = pod["spec"]["containers"]
    data = {c["metadata"]["name"]: c["data"] for c in config_maps}
    sources = {
        v["name"]: v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v
    }
    mounts: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        if mount["name"] not in sources:
            continue
        local = root / mount["mountPath"].lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        for key, text in data[sources[mount["name"]]].items():
            (local / key).write_text(text, encoding="utf-8")
        mounts[mount["mountPath"].rstrip("/") + "/"] = local
    environ = {}
    for var in container["env"]:
        value = var["value"]
        for prefix, local in mounts.items():
            if value.startswith(prefix):
                value = str(local / value[len(prefix) :])
        environ[var["name"]] = value
    return environ
