"""Reads the chief's /metrics of every Running job into ``status.progress`` on an interval,
concurrently in a bounded pool: one slow endpoint delays no other job's read. What is read and
how it is parsed is progress.py's; this module only schedules and writes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import lifecycle, progress
from .events import EventRecorder
from .job import Job
from .kube import Cluster
from .opmetrics import OperatorMetrics
from .settings import Settings

log = logging.getLogger("densenet_operator")
Key = tuple[str, str]  # namespace, name


class ProgressPoller:
    def __init__(
        self,
        cluster: Cluster,
        settings: Settings,
        metrics: OperatorMetrics,
        events: EventRecorder,
        pods_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.metrics = metrics
        self.events = events
        self.pods_of = pods_of
        self._samples: dict[Key, progress.Sample] = {}  # last step and when, for the rate

    def forget(self, key: Key) -> None:
        self._samples.pop(key, None)

    def run(self, stop: threading.Event, running: Callable[[], list[Key]]) -> None:
        """Every progress_interval, read the jobs ``running()`` names, until ``stop``."""
        with ThreadPoolExecutor(progress.READERS, thread_name_prefix="progress") as pool:
            while not stop.wait(self.settings.progress_interval):
                for _ in pool.map(self._read_logged, running()):
                    pass

    def _read_logged(self, key: Key) -> None:
        try:
            self.read(*key)
        except Exception:
            log.exception("reading the progress of %s/%s failed", *key)

    def read(self, namespace: str, name: str) -> None:
        obj = self.cluster.read_job(namespace, name)
        if obj is None:
            return
        job = Job.from_object(obj)
        status = obj.get("status") or {}
        url = progress.chief_endpoint(
            job,
            status,
            self.pods_of(obj),
            self.cluster.node_labels,
            self.settings.no_scrape_labels(),
        )
        if url is None:
            self.metrics.progress_reads.labels(result="skipped").inc()
            return
        text = progress.fetch(url)
        self.metrics.progress_reads.labels(result="failed" if text is None else "ok").inc()
        if text is None:
            return  # status.progress.updated ages: that is the signal
        now = self.cluster.now()
        key = (namespace, name)
        values = progress.parse(text)
        new = progress.progress(values, job.spec, self._samples.get(key), now)
        if "step" in new:
            self._samples[key] = progress.Sample(new["step"], now)
        moved = progress.step_time(status.get("progress") or {}, new, now)
        if moved:
            new["stepTime"] = moved
        message = progress.fallback_event(status.get("progress") or {}, new)
        if message:
            self.events.post(obj, lifecycle.Event(lifecycle.WARNING, "CheckpointFallback", message))
        update = {**status, "progress": new}
        closed = progress.recovered(status.get("goodput") or {}, values, new)
        if closed is not None:
            goodput, seconds, lost = closed
            # A merge patch keeps keys it does not name: the closed record's are set to null.
            update["goodput"] = {**goodput, **dict.fromkeys(progress.PENDING)}
            labels = {"namespace": namespace, "accelerator": job.accelerator}
            self.metrics.recovery_seconds.labels(**labels).observe(seconds)
            self.metrics.steps_lost.labels(**labels).inc(lost)
        # Only status.progress (and a closed goodput record) change, so no precondition: a
        # reconcile never writes these fields but to open a record.
        self.cluster.patch_status(obj, update, precondition=False)
