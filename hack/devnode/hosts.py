"""/etc/hosts for a pod: its own names and the headless-Service names of its namespace (what
cluster DNS would answer). Only addresses on the runner's pod network are listed, so a name can
never lead to a fake (kwok) pod."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

CLUSTER_DOMAIN = "cluster.local"


def is_live(pod: dict) -> bool:
    status = pod.get("status") or {}
    return not pod["metadata"].get("deletionTimestamp") and status.get("phase") not in (
        "Succeeded",
        "Failed",
    )


def selects(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _forms(name: str, namespace: str) -> list[str]:
    """`name.ns.svc.cluster.local`, `name.ns.svc`, `name.ns`."""
    return [
        f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}",
    ]


def pod_hostname(pod: dict) -> str:
    return pod["spec"].get("hostname") or pod["metadata"]["name"]


def render_hosts(
    pod: dict,
    pod_ip: str,
    namespace_pods: Iterable[dict],
    namespace_services: Iterable[dict],
    network: ipaddress.IPv4Network,
) -> str:
    ns = pod["metadata"]["namespace"]
    hostname = pod_hostname(pod)
    subdomain = pod["spec"].get("subdomain")
    own = [f"{hostname}.{f}" for f in _forms(subdomain, ns)] if subdomain else []
    lines = [
        "# Kubernetes-managed hosts file (devnode).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{' '.join([*own, hostname])}",
    ]
    members = sorted(
        (
            p
            for p in namespace_pods
            if is_live(p) and _ip_in(p.get("status", {}).get("podIP"), network)
        ),
        key=lambda p: p["metadata"]["name"],
    )
    for svc in sorted(namespace_services, key=lambda s: s["metadata"]["name"]):
        spec = svc.get("spec") or {}
        if spec.get("clusterIP") != "None":
            continue
        name = svc["metadata"]["name"]
        for member in members:
            if not selects(spec.get("selector"), member["metadata"].get("labels")):
                continue
            ip = member["status"]["podIP"]
            if member["spec"].get("subdomain") == name:
                host = pod_hostname(member)
                names = [f"{host}.{f}" for f in _forms(name, ns)] + [f"{host}.{name}"]
                lines.append(f"{ip}\t{' '.join(names)}")
            lines.append(f"{ip}\t{' '.join([*_forms(name, ns), name])}")
    return "\n".join(lines) + "\n"


def _ip_in(ip: str | None, network: ipaddress.IPv4Network) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def render_resolv_conf(namespace: str) -> str:
    # Nothing answers on the pod's own loopback: names not in /etc/hosts fail at once, and no
    # query ever leaves the pod network for the host's resolver.
    return (
        f"search {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
        "nameserver 127.0.0.1\noptions ndots:5 attempts:1 timeout:1\n"
    )
