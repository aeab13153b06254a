"""A container's environment as a kubelet computes it: service variables for the API server,
envFrom, env with valueFrom (downward API fieldRef/resourceFieldRef, configMap and secret keys)
and $(VAR) expansion. Pure: lookups of ConfigMaps and Secrets are passed in."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

Lookup = Callable[[str, str], Mapping[str, bytes] | None]  # (namespace, name) -> data or None


class ConfigError(Exception):
    """The container cannot start yet (CreateContainerConfigError), e.g. a missing ConfigMap."""


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: unknown references stay as written, $$ escapes."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REF.sub(sub, value)


_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: dict, path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    m = _LABEL_REF.match(path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"fieldRef {path!r} is not supported")


def resource_value(container: dict, ref: dict, node_allocatable: Mapping[str, str]) -> str:
    resource = ref["resource"]  # e.g. limits.cpu
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None:
        raw = node_allocatable.get(name, "0") if kind == "limits" else "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(Decimal(parse_quantity(raw)) / Decimal(divisor)))


def configmap_data(obj: dict) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def secret_data(obj: dict) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    return data


def container_env(
    pod: dict,
    container: dict,
    *,
    base: Mapping[str, str],
    pod_ip: str,
    host_ip: str,
    node_allocatable: Mapping[str, str],
    configmaps: Lookup,
    secrets: Lookup,
) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for ref_kind, lookup in (("configMapRef", configmaps), ("secretRef", secrets)):
            ref = source.get(ref_kind)
            if ref is None:
                continue
            obj = lookup(ns, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"{ref_kind} {ref['name']!r} not found")
            for key in sorted(obj):
                env[prefix + key] = obj[key].decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            env[name] = resource_value(container, source["resourceFieldRef"], node_allocatable)
        else:
            for ref_kind, lookup in (("configMapKeyRef", configmaps), ("secretKeyRef", secrets)):
                ref = source.get(ref_kind)
                if ref is None:
                    continue
                obj = lookup(ns, ref["name"])
                value = obj.get(ref["key"]) if obj is not None else None
                if value is None:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f"{ref_kind} {ref['name']}/{ref['key']} not found")
                env[name] = value.decode(errors="replace")
    return env


def command_line(container: dict, env: Mapping[str, str], entrypoint: tuple[str, ...]) -> list[str]:
    command = container.get("command") or list(entrypoint)
    if not command:
        raise ConfigError(
            f"container {container['name']!r} has no command and its image has no entrypoint "
            "in the image map"
        )
    return [expand(a, env) for a in [*command, *(container.get("args") or [])]]
