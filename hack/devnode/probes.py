"""Readiness and liveness probes (httpGet, tcpSocket, exec), one thread per probed container,
with the kubelet's defaults and thresholds. Probes go to the pod's own IP, on the pod network;
a probe `host` outside the pod network and loopback is never dialled (the probe fails)."""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field

from devcluster import config

log = logging.getLogger(__name__)


def resolve_port(port: int | str, container: dict) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {port!r}")


def probe_target(host: str | None, pod_ip: str) -> str:
    """The address a network probe dials: the pod's IP, or a `host` on the pod network or
    loopback; anything else raises ValueError (nothing else on this machine is ours to dial)."""
    target = host or pod_ip
    try:
        address = ipaddress.ip_address(target)
    except ValueError as exc:
        raise ValueError(f"probe host {target!r} is not an IP address") from exc
    if address.is_loopback or address in config.RUNNER_POD_CIDR:
        return target
    raise ValueError(f"probe host {target} is outside the pod network and loopback")


def run_probe(probe: dict, container: dict, pod_ip: str, pid: int, env: dict[str, str]) -> bool:
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = resolve_port(get["port"], container)
            scheme = get.get("scheme", "HTTP").upper()
            conn_cls = (
                http.client.HTTPSConnection if scheme == "HTTPS" else http.client.HTTPConnection
            )
            kwargs = {"context": _insecure()} if scheme == "HTTPS" else {}
            conn = conn_cls(probe_target(get.get("host"), pod_ip), port, timeout=timeout, **kwargs)
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            try:
                conn.request("GET", get.get("path", "/"), headers=headers)
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
        if "tcpSocket" in probe:
            port = resolve_port(probe["tcpSocket"]["port"], container)
            target = probe_target(probe["tcpSocket"].get("host"), pod_ip)
            with socket.create_connection((target, port), timeout):
                return True
        if "exec" in probe:
            # Inside the container's namespaces (mounts, hostname, network), with its environment.
            argv = ["nsenter", "-t", str(pid), "-m", "-u", "-n", "--", *probe["exec"]["command"]]
            done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout, check=False)
            return done.returncode == 0
    except (OSError, ValueError, http.client.HTTPException, subprocess.TimeoutExpired):
        return False
    log.debug("unsupported probe %s: counted as success", sorted(probe))
    return True


def _insecure() -> ssl.SSLContext:  # the kubelet does not verify probe certificates either
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Prober:
    """Probes one running container until stop(); `ready` and `live` follow the thresholds."""

    container: dict
    pod_ip: str
    pid: int
    env: dict[str, str]
    on_change: threading.Event
    ready: bool = False
    live: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.ready = "readinessProbe" not in self.container
        self.threads = [
            threading.Thread(target=self._loop, args=(kind,), daemon=True, name=f"probe {kind}")
            for kind in ("readinessProbe", "livenessProbe")
            if kind in self.container
        ]
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self, kind: str) -> None:
        probe = self.container[kind]
        period = probe.get("periodSeconds", 10)
        needed_ok, needed_fail = probe.get("successThreshold", 1), probe.get("failureThreshold", 3)
        oks = fails = 0
        if self._stop.wait(probe.get("initialDelaySeconds", 0)):
            return
        while not self._stop.is_set():
            if run_probe(probe, self.container, self.pod_ip, self.pid, self.env):
                oks, fails = oks + 1, 0
            else:
                oks, fails = 0, fails + 1
            if kind == "readinessProbe":
                state = self.ready
                if oks >= needed_ok:
                    state = True
                elif fails >= needed_fail:
                    state = False
                if state != self.ready:
                    self.ready = state
                    self.on_change.set()
            elif fails >= needed_fail:
                self.live = False
                self.on_change.set()
                return
            if self._stop.wait(period):
                return
