"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it,
so the chart can run two replicas (or two releases watching one namespace) with one active.

Every replica runs kopf and keeps its watch streams warm; only the holder of the Lease acts
(Reconciler.active). The holder renews the Lease every ``retry`` seconds; a replica takes it
over once ``renewTime + leaseDurationSeconds`` has passed by the API server's clock. A holder
that could not renew within ``renew_deadline`` (shorter than the lease duration, so it stops
before anyone else may start) stops acting and the process exits non-zero: Kubernetes restarts
it as a follower.

kopf's own peering was the first choice and was read against the need (kopf 1.45,
_core/engines/peering.py): an operator pauses for a peer of higher priority, and peers of equal
priority (two replicas of one Deployment) pause each other, all of them, until one is gone. A
Deployment's replicas share one priority, so peering would need a per-pod priority and a
KopfPeering CRD; a Lease needs neither and is what Kubernetes' own controllers use.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from .kube import ApiError, Transport

log = logging.getLogger("densenet_operator.leader")
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    duration: float = 15.0  # seconds a lease holds without renewal
    renew_deadline: float = 10.0  # a holder that could not renew for this long steps down
    retry: float = 2.0  # seconds between attempts to acquire or renew


def identity() -> str:
    """This process, as the Lease's holderIdentity shows it (the pod name is the hostname)."""
    return f"{socket.gethostname()}_{os.getpid()}"


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(self, transport: Transport, config: LeaseConfig, holder: str) -> None:
        self.api = transport
        self.config = config
        self.holder = holder
        self.path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{quote(config.namespace)}"
            f"/leases/{quote(config.name)}"
        )

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this process holds the Lease afterwards."""
        now = self.api.now()
        stamp = now.strftime(MICRO_TIME)
        try:
            lease = self.api.request("GET", self.path)
        except ApiError as err:
            if err.status != 404:
                raise
            return self._create(stamp)
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        mine = spec.get("holderIdentity") == self.holder
        if not mine:
            renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
            duration = int(spec.get("leaseDurationSeconds") or self.config.duration)
            if renewed is not None and now < renewed + timedelta(seconds=duration):
                return False  # held by another replica and not expired
            spec["holderIdentity"] = self.holder
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["renewTime"] = stamp
        spec["leaseDurationSeconds"] = int(self.config.duration)
        lease["spec"] = spec
        try:
            self.api.request("PUT", self.path, lease)  # resourceVersion: a race loses with 409
        except ApiError as err:
            if err.status == 409:
                return False
            raise
        return True

    def _create(self, stamp: str) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": int(self.config.duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        collection = self.path.rsplit("/", 1)[0]
        try:
            self.api.request("POST", collection, body)
        except ApiError as err:
            if err.status == 409:
                return False  # another replica created it first
            raise
        return True

    def run(
        self,
        stop: threading.Event,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
    ) -> None:
        """Acquire, then keep renewing until ``stop`` or a missed renew deadline (which calls
        ``on_stopped`` and returns)."""
        leading = False
        last_renewal = 0.0
        while not stop.is_set():
            try:
                held = self.try_acquire_or_renew()
            except (ApiError, OSError) as err:
                log.warning("leader election: %s", err)
                held = False
            except Exception:  # urllib3 errors after the client's retries, and the like
                log.exception("leader election failed")
                held = False
            if held:
                last_renewal = time.monotonic()
                if not leading:
                    leading = True
                    log.info(
                        "leading: holding lease %s/%s", self.config.namespace, self.config.name
                    )
                    on_started()
            elif leading and time.monotonic() - last_renewal > self.config.renew_deadline:
                log.error(
                    "lost lease %s/%s (not renewed for %gs): stopping",
                    self.config.namespace,
                    self.config.name,
                    self.config.renew_deadline,
                )
                on_stopped()
                return
            elif not leading and not held:
                log.debug("following: lease %s held by another replica", self.config.name)
            stop.wait(self.config.retry)
        if leading:
            self.release()

    def release(self) -> None:
        """Give the Lease up on a clean stop (a rolling update), so a follower takes over
        at its next try instead of after the lease duration; best effort."""
        try:
            lease = self.api.request("GET", self.path)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.holder:
                return
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}
            self.api.request("PUT", self.path, lease)
        except Exception as err:  # the process is stopping: a lease left expires on its own
            log.warning("could not release lease %s: %s", self.config.name, err)
