"""Pod network: one bridge on the host, one network namespace and veth pair per pod, all named
after the bridge so a runner finds (and removes) exactly its own. Pods get no default route:
only the pod network itself (and its gateway, the host) is reachable from inside."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")


class NetError(Exception):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class PodNetwork:
    bridge: str
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address

    def netns_name(self, uid: str) -> str:
        return f"{self.bridge}-{uid[:8]}"

    def veth_name(self, uid: str) -> str:
        return f"{self.bridge}v{uid[:8]}"  # at most 15 characters (IFNAMSIZ)

    @property
    def prefix(self) -> str:
        return f"{self.bridge}-"

    def etc_dir(self, uid: str) -> Path:
        return ETC_NETNS / self.netns_name(uid)

    def create_bridge(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.cidr.prefixlen}", "dev", self.bridge)
        _write(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6", "1")
        ip("link", "set", self.bridge, "up")
        self.allow_forwarding()

    def _forward_rule(self) -> list[str]:
        comment = f"densenet devnode: pod to pod on {self.bridge}"
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

    def remove_forwarding(self) -> None:
        if shutil.which("iptables") is None:
            return
        while _iptables("-D", *self._forward_rule()).returncode == 0:
            pass

    def create_pod(self, uid: str, pod_ip: str, hosts: str, resolv: str) -> str:
        ns, veth = self.netns_name(uid), self.veth_name(uid)
        etc = self.etc_dir(uid)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts)
        (etc / "resolv.conf").write_text(resolv)
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", veth, "master", self.bridge, "up")
        ip("-n", ns, "addr", "add", f"{pod_ip}/{self.cidr.prefixlen}", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def delete_pod(self, uid: str) -> None:
        delete_netns(self.netns_name(uid))
        ip("link", "del", self.veth_name(uid), check=False)
        shutil.rmtree(self.etc_dir(uid), ignore_errors=True)

    def cleanup_all(self) -> None:
        """Remove every namespace, veth, /etc/netns entry and the bridge of this runner."""
        for name in own_netns(self.prefix):
            delete_netns(name)
        links = ip("-o", "link", "show", check=False).stdout.splitlines()
        for line in links:
            name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if name.startswith(f"{self.bridge}v"):
                ip("link", "del", name, check=False)
        if ETC_NETNS.is_dir():
            for entry in ETC_NETNS.iterdir():
                if entry.name.startswith(self.prefix):
                    shutil.rmtree(entry, ignore_errors=True)
            with contextlib.suppress(OSError):
                ETC_NETNS.rmdir()  # only if empty
        ip("link", "del", self.bridge, check=False)
        self.remove_forwarding()


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)


def own_netns(prefix: str) -> list[str]:
    out = ip("netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in out if line.startswith(prefix)]


def netns_pids(name: str) -> list[int]:
    out = ip("netns", "pids", name, check=False).stdout.split()
    return [int(p) for p in out if p.isdigit()]


def delete_netns(name: str) -> None:
    # Anything still inside (a forked child that left its process group) dies with it.
    for pid in netns_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    ip("netns", "del", name, check=False)


def _write(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)


def write_in_place(path: Path, content: str) -> None:
    """`ip netns exec` bind-mounts this file over /etc/hosts, so a rename would not be seen
    inside. One write at offset 0, padded with blank lines to at least the old length, so the
    file is never truncated and a reader never sees old and new lines mixed."""
    data = content.encode()
    fd = os.open(path, os.O_RDWR)
    try:
        old = os.read(fd, max(os.fstat(fd).st_size, 1))
        if old.rstrip(b"\n") == data.rstrip(b"\n"):
            return
        os.pwrite(fd, data + b"\n" * (len(old) - len(data)), 0)
    finally:
        os.close(fd)
