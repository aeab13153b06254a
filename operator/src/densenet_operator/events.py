"""Kubernetes Events on jobs, posted off the reconcile path: they inform, nothing waits for
them, and a slow or refused post never delays or fails a reconcile."""

from __future__ import annotations

import queue
import threading
from typing import Any

from .kube import Cluster
from .lifecycle import Event


class EventRecorder:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._queue: queue.Queue[tuple[dict[str, Any], Event]] = queue.Queue()

    def post(self, job: dict[str, Any], event: Event) -> None:
        """Queue ``event`` on ``job`` (an object as read: its uid names it)."""
        self._queue.put((job, event))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job, event = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            self.cluster.post_event(job, event)
