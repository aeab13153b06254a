"""Pod events as a kubelet records them (Started, BackOff, Killing, Failed), so
`kubectl describe pod` tells what happened. Best effort: a lost event never stops a pod."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from devnode.kube import Kube, KubeError
from devnode.timefmt import now_rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    container: str | None = None
    warning: bool = False


def event_manifest(pod: dict, node: str, event: Event) -> dict:
    meta = pod["metadata"]
    involved = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta["uid"],
    }
    if event.container:
        involved["fieldPath"] = f"spec.containers{{{event.container}}}"
    now = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
            "namespace": meta["namespace"],
        },
        "involvedObject": involved,
        "reason": event.reason,
        "message": event.message,
        "type": "Warning" if event.warning else "Normal",
        "source": {"component": "devnode", "host": node},
        "reportingComponent": "devnode",
        "reportingInstance": node,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def post(kube: Kube, pod: dict, node: str, events: list[Event]) -> None:
    ns = pod["metadata"]["namespace"]
    for event in events:
        try:
            kube.request(
                "POST", f"/api/v1/namespaces/{ns}/events", event_manifest(pod, node, event)
            )
        except KubeError as exc:
            log.debug("event %s for %s/%s: %s", event.reason, ns, pod["metadata"]["name"], exc)
