"""What each pod volume holds and where it is mounted. Pure: the runner writes the files and
bind-mounts the directories (volumefs.py, shim.py)."""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devnode.envvars import ConfigError, Lookup, expand, field_value, resource_value

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME = "devnode-sa-token"
DEFAULT_TOKEN_SECONDS = 3607

# Volumes whose files the runner writes (and rewrites when their source changes).
FILE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")

Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
TokenSource = Callable[[str | None, int], bytes]  # (audience, expirationSeconds) -> token


@dataclass(frozen=True)
class Mount:
    source: str  # host path
    target: str  # path inside the pod
    read_only: bool


def kind_of(volume: dict) -> str:
    for kind in (*FILE_VOLUMES, "emptyDir", "hostPath", "persistentVolumeClaim"):
        if kind in volume:
            return kind
    other = next((k for k in volume if k != "name"), "?")
    raise ConfigError(f"volume {volume['name']!r}: type {other!r} is not supported by devnode")


def claimed_host_path(claim_name: str, claim: dict, volume: dict | None) -> dict | None:
    """The hostPath source ({path, type}) behind a bound PersistentVolumeClaim, None while it is
    not bound; devnode mounts PersistentVolumes of type hostPath or local only."""
    pv_name = (claim.get("spec") or {}).get("volumeName")
    if (claim.get("status") or {}).get("phase") != "Bound" or not pv_name or volume is None:
        return None
    spec = volume.get("spec") or {}
    source = spec.get("hostPath") or spec.get("local")
    if not source:
        raise ConfigError(
            f"persistentVolumeClaim {claim_name!r}: PersistentVolume {pv_name!r} is not a "
            "hostPath or local volume, which are all devnode mounts"
        )
    return {"path": source["path"], "type": source.get("type", "")}


def with_service_account_volume(pod: dict) -> dict:
    """Add the service-account volume where admission did not (automount unless disabled)."""
    spec = pod["spec"]
    if spec.get("automountServiceAccountToken") is False:
        return pod
    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    if all(
        any(m["mountPath"].rstrip("/") == SA_MOUNT_PATH for m in c.get("volumeMounts", []))
        for c in containers
    ):
        return pod
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    spec.setdefault("volumes", []).append(
        {
            "name": SA_VOLUME,
            "projected": {
                "defaultMode": 0o644,
                "sources": [
                    {
                        "serviceAccountToken": {
                            "path": "token",
                            "expirationSeconds": DEFAULT_TOKEN_SECONDS,
                        }
                    },
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        mounts = c.setdefault("volumeMounts", [])
        if not any(m["mountPath"].rstrip("/") == SA_MOUNT_PATH for m in mounts):
            mounts.append({"name": SA_VOLUME, "mountPath": SA_MOUNT_PATH, "readOnly": True})
    return pod


def _safe_path(path: str, volume: str) -> str:
    norm = posixpath.normpath(path)
    if norm.startswith(("/", "..")) or norm == ".":
        raise ConfigError(f"volume {volume!r}: item path {path!r} must be relative, without '..'")
    return norm


def _keyed(
    data: Mapping[str, bytes] | None,
    source: dict,
    volume: str,
    what: str,
    default_mode: int,
) -> Files:
    if data is None:
        if source.get("optional"):
            return {}
        raise ConfigError(f"volume {volume!r}: {what} not found")
    items = source.get("items")
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    files: Files = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise ConfigError(f"volume {volume!r}: key {item['key']!r} not in {what}")
        files[_safe_path(item["path"], volume)] = (
            data[item["key"]],
            item.get("mode", default_mode),
        )
    return files


@dataclass(frozen=True)
class FileContext:
    pod: dict
    pod_ip: str
    host_ip: str
    node_allocatable: Mapping[str, str]
    configmaps: Lookup
    secrets: Lookup
    token: TokenSource


def _downward(items: list[dict], volume: str, ctx: FileContext, default_mode: int) -> Files:
    files: Files = {}
    containers = {c["name"]: c for c in ctx.pod["spec"].get("containers", [])}
    for item in items:
        path = _safe_path(item["path"], volume)
        if "fieldRef" in item:
            value = field_value(ctx.pod, item["fieldRef"]["fieldPath"], ctx.pod_ip, ctx.host_ip)
        else:
            ref = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName", ""), {})
            value = resource_value(container, ref, ctx.node_allocatable)
        files[path] = (value.encode(), item.get("mode", default_mode))
    return files


def volume_files(volume: dict, ctx: FileContext) -> Files:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    name = volume["name"]
    ns = ctx.pod["metadata"]["namespace"]
    kind = kind_of(volume)
    src = volume[kind]
    mode = src.get("defaultMode", 0o644)
    if kind == "configMap":
        data = ctx.configmaps(ns, src["name"])
        return _keyed(data, src, name, f"ConfigMap {src['name']!r}", mode)
    if kind == "secret":
        data = ctx.secrets(ns, src["secretName"])
        return _keyed(data, src, name, f"Secret {src['secretName']!r}", mode)
    if kind == "downwardAPI":
        return _downward(src.get("items", []), name, ctx, mode)
    files: Files = {}
    for source in src.get("sources", []):
        if "configMap" in source:
            s = source["configMap"]
            files.update(
                _keyed(ctx.configmaps(ns, s["name"]), s, name, f"ConfigMap {s['name']!r}", mode)
            )
        elif "secret" in source:
            s = source["secret"]
            files.update(_keyed(ctx.secrets(ns, s["name"]), s, name, f"Secret {s['name']!r}", mode))
        elif "downwardAPI" in source:
            files.update(_downward(source["downwardAPI"].get("items", []), name, ctx, mode))
        elif "serviceAccountToken" in source:
            s = source["serviceAccountToken"]
            token = ctx.token(s.get("audience"), s.get("expirationSeconds", DEFAULT_TOKEN_SECONDS))
            files[_safe_path(s["path"], name)] = (token, mode)
        else:
            raise ConfigError(f"volume {name!r}: projected source {sorted(source)} not supported")
    return files


def container_mounts(
    container: dict,
    volume_dirs: Mapping[str, str],
    read_only_volumes: set[str],
    env: Mapping[str, str],
) -> list[Mount]:
    mounts = []
    for m in container.get("volumeMounts") or []:
        if m["name"] not in volume_dirs:
            raise ConfigError(f"volumeMount {m['name']!r}: no such volume in the pod")
        source = volume_dirs[m["name"]]
        sub = m.get("subPath") or (expand(m["subPathExpr"], env) if m.get("subPathExpr") else "")
        if sub:
            source = posixpath.join(source, _safe_path(sub, m["name"]))
        target = posixpath.normpath(m["mountPath"])
        if not target.startswith("/"):
            raise ConfigError(f"volumeMount {m['name']!r}: mountPath must be absolute")
        read_only = bool(m.get("readOnly")) or m["name"] in read_only_volumes
        mounts.append(Mount(source, target, read_only))
    # Parents before children, so a mount nested in another volume lands inside it.
    return sorted(mounts, key=lambda m: m.target.count("/"))
