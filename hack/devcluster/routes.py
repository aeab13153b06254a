"""Blackhole routes for the address ranges that lead nowhere on this machine: the fake nodes'
pod CIDR and the Service range (there is no kube-proxy). Without them, anything on the host that
dialled a fake pod or a ClusterIP would send packets out of the default route.

The real node's range gets a blackhole too, at a low priority (a high
metric): while its bridge exists, the bridge's own route wins; once the node is stopped and the
bridge is gone, a stale address (a Node's InternalIP the API server still dials for `kubectl
logs`) leads nowhere instead of out of the default route."""

from __future__ import annotations

import os
import subprocess

from devcluster import config

BLACKHOLED = (config.KWOK_POD_CIDR, config.SERVICE_CIDR)
# Below the bridge's connected route (metric 0): only used when the bridge is gone.
FALLBACK_BLACKHOLED = (config.REAL_NODE_POD_CIDR,)
FALLBACK_METRIC = "4242"


def _ip_route(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "route", *args], capture_output=True, text=True, check=False)


def can_manage() -> bool:
    return os.geteuid() == 0


def _routes() -> list[tuple[str, ...]]:
    plain = [("blackhole", str(cidr)) for cidr in BLACKHOLED]
    fallback = [("blackhole", str(c), "metric", FALLBACK_METRIC) for c in FALLBACK_BLACKHOLED]
    return plain + fallback


def add_blackholes() -> None:
    for route in _routes():
        result = _ip_route("replace", *route)
        if result.returncode != 0:
            raise OSError(f"ip route replace {' '.join(route)}: {result.stderr.strip()}")


def remove_blackholes() -> None:
    for route in _routes():
        _ip_route("del", *route)


def blackholed() -> set[str]:
    """The CIDRs that currently have a blackhole route."""
    out = _ip_route("show", "type", "blackhole").stdout.split("\n")
    return {line.split()[1] for line in out if line.startswith("blackhole ")}
