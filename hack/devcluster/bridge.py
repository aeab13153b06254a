"""The real node's pod bridge on the host: its gateway address (the node's InternalIP, where
the kubelet, CoreDNS and the API relay listen) and the one forwarding rule its pods need. The
CNI bridge plugin attaches each pod to it; no default route leaves it."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class NetError(Exception):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class PodBridge:
    bridge: str
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address

    def exists(self) -> bool:
        return ip("link", "show", self.bridge, check=False).returncode == 0

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.cidr.prefixlen}", "dev", self.bridge)
        _write(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6", "1")
        ip("link", "set", self.bridge, "up")
        self.allow_forwarding()

    def _forward_rule(self) -> list[str]:
        comment = f"densenet devcluster: pod to pod on {self.bridge}"
        return ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-m", "comment", "--comment",
                comment, "-j", "ACCEPT"]  # fmt: skip

    def allow_forwarding(self) -> None:
        """Pod-to-pod traffic on the bridge, whatever the FORWARD policy: Docker sets it to
        DROP and loads br_netfilter, so bridged packets meet that policy (the CNI bridge plugin
        adds the same kind of rule). Only bridge-to-bridge: nothing leaves it this way."""
        if shutil.which("iptables") is None:
            return  # no iptables, no netfilter rules to get past
        if _iptables("-C", *self._forward_rule()).returncode != 0:
            proc = _iptables("-I", *self._forward_rule())
            if proc.returncode != 0:
                raise NetError(f"iptables -I FORWARD for {self.bridge}: {proc.stderr.strip()}")

    def remove(self) -> None:
        """The bridge and its forwarding rule (the pods' veths go with their sandboxes)."""
        ip("link", "del", self.bridge, check=False)
        if shutil.which("iptables") is None:
            return
        while _iptables("-D", *self._forward_rule()).returncode == 0:
            pass


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)


def _write(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)
