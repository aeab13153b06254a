"""Pod IP addresses from the runner's pod CIDR (minus the gateway and excluded ranges)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence


class IPExhaustedError(Exception):
    pass


class IPAllocator:
    def __init__(
        self,
        cidr: ipaddress.IPv4Network,
        gateway: ipaddress.IPv4Address,
        exclude: Sequence[ipaddress.IPv4Network] = (),
    ) -> None:
        self._free = [
            str(a) for a in cidr.hosts() if a != gateway and not any(a in net for net in exclude)
        ]
        self._held: dict[str, str] = {}  # uid -> ip
        self._next = 0  # round robin, so a freed address is not handed out again at once
        self._lock = threading.Lock()

    def allocate(self, uid: str, preferred: str | None = None) -> str:
        with self._lock:
            if uid in self._held:
                return self._held[uid]
            used = set(self._held.values())
            if preferred in self._free and preferred not in used:
                ip = preferred
            else:
                order = self._free[self._next :] + self._free[: self._next]
                ip = next((a for a in order if a not in used), None)
            if ip is None:
                raise IPExhaustedError(f"no free pod IP left ({len(used)} in use)")
            self._held[uid] = ip
            self._next = (self._free.index(ip) + 1) % len(self._free)
            return ip

    def release(self, uid: str) -> None:
        with self._lock:
            self._held.pop(uid, None)
