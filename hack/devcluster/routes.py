"""Blackhole routes for the address ranges that lead nowhere on this machine: the fake nodes'
pod CIDR and the Service range (there is no kube-proxy). Without them, anything on the host that
dialled a fake pod or a ClusterIP would send packets out of the default route."""

from __future__ import annotations

import os
import subprocess

from devcluster import config

BLACKHOLED = (config.KWOK_POD_CIDR, config.SERVICE_CIDR)


def _ip_route(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "route", *args], capture_output=True, text=True, check=False)


def can_manage() -> bool:
    return os.geteuid() == 0


def add_blackholes() -> None:
    for cidr in BLACKHOLED:
        result = _ip_route("replace", "blackhole", str(cidr))
        if result.returncode != 0:
            raise OSError(f"ip route replace blackhole {cidr}: {result.stderr.strip()}")


def remove_blackholes() -> None:
    for cidr in BLACKHOLED:
        _ip_route("del", "blackhole", str(cidr))


def blackholed() -> set[str]:
    """The CIDRs that currently have a blackhole route."""
    out = _ip_route("show", "type", "blackhole").stdout.split("\n")
    return {line.split()[1] for line in out if line.startswith("blackhole ")}
