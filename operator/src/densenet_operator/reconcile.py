"""Runs the reconcile decision against the cluster: one reconcile per job at a time, events
coalesced, every known job looked at again on a timer, progress read on its own thread."""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from . import policy, progress
from .job import ANNOTATION_PRIVILEGED, Job
from .kube import ApiError, Cluster, ForeignObjectError
from .opmetrics import OperatorMetrics
from .pods import view
from .render import ranktable, render_pod, render_shared
from .settings import Settings

log = logging.getLogger("densenet_operator")
Key = tuple[str, str]  # namespace, name
# A reconcile that failed (the API server down, a 5xx past the client's retries) is tried
# again after this long, doubling to the resync interval.
RETRY_AFTER_ERROR = 1.0
# Decisions made again at once when the job changed under them (a 409 on the status write).
CONFLICT_RETRIES = 3


class Coalescer:
    """At most one run per key at a time; triggers during a run cause exactly one more run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[Key, bool] = {}  # key -> triggered again while running

    def run(self, key: Key, work: Callable[[], None]) -> None:
        with self._lock:
            if key in self._state:
                self._state[key] = True
                return
            self._state[key] = False
        try:
            while True:
                work()
                with self._lock:
                    if not self._state[key]:
                        return
                    self._state[key] = False
        finally:
            with self._lock:
                self._state.pop(key, None)


class Reconciler:
    def __init__(self, cluster: Cluster, settings: Settings, metrics: OperatorMetrics) -> None:
        self.cluster = cluster
        self.settings = settings
        self.metrics = metrics
        self.coalescer = Coalescer()
        self.phases: dict[Key, str] = {}
        self.known: set[Key] = set()  # every job seen: the resync visits each
        self._errors: dict[Key, int] = {}  # consecutive failed reconciles, for the retry delay
        self._timers: dict[Key, threading.Timer] = {}
        self._timers_lock = threading.Lock()
        self._samples: dict[Key, progress.Sample] = {}
        self._pod_marks: dict[str, tuple] = {}  # pod uid -> what the decision last saw
        self._stop = threading.Event()
        # Set while this replica acts: always without leader election, else while it holds
        # the Lease. A follower keeps its watches and the list of jobs, and does nothing else.
        self.active = threading.Event()
        # Events are posted off the reconcile path: they inform, nothing waits for them.
        self._events: queue.Queue[tuple[dict[str, Any], policy.Event]] = queue.Queue()
        self._threads: list[threading.Thread] = []

    # --- entry points -------------------------------------------------------------------
    def trigger(self, namespace: str, name: str, handler: str) -> None:
        key = (namespace, name)
        self.known.add(key)
        if self.active.is_set():
            self.coalescer.run(key, lambda: self._timed(key, handler))

    def set_active(self, active: bool) -> None:
        """Start acting (the resync then visits every known job) or stop."""
        if active:
            self.active.set()
        else:
            self.active.clear()
        self.metrics.leader.set(1 if active else 0)

    def job_needs_look(self, namespace: str, name: str, body: Mapping[str, Any]) -> bool:
        """A job event matters unless it only echoes a status we wrote for its current spec."""
        status = body.get("status") or {}
        known = (namespace, name) in self.phases
        return not known or status.get("observedGeneration") != body["metadata"].get("generation")

    def pod_needs_look(self, event: str | None, body: Mapping[str, Any]) -> bool:
        """A pod event matters when something the decision reads changed."""
        uid = body["metadata"].get("uid", "")
        if event == "DELETED":
            self._pod_marks.pop(uid, None)
            return True
        pod = view(dict(body))
        annotations = pod.source["metadata"].get("annotations") or {}
        mark = (
            pod.phase, pod.deleting, pod.node_name, pod.exit_code, pod.evicted,
            pod.not_started_reason, ranktable.ANNOTATION in annotations,
        )  # fmt: skip
        if self._pod_marks.get(uid) == mark:
            return False
        self._pod_marks[uid] = mark
        return True

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self.known.discard(key)
        self._errors.pop(key, None)
        self.phases.pop(key, None)
        self._samples.pop(key, None)
        with self._timers_lock:
            timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()
        self.metrics.set_phases(list(self.phases.values()))

    def start(self) -> None:
        for target in (self._resync_loop, self._progress_loop, self._event_loop):
            thread = threading.Thread(target=target, name=target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._timers_lock:
            for timer in self._timers.values():
                timer.cancel()

    # --- one reconcile ------------------------------------------------------------------
    def _timed(self, key: Key, handler: str) -> None:
        start = time.perf_counter()
        try:
            for _ in range(CONFLICT_RETRIES):
                try:
                    self.reconcile(*key)
                    break
                except ApiError as err:
                    if err.status != 409 or isinstance(err, ForeignObjectError):
                        raise
                    # The job changed since it was read: decide again on the new version.
            self._errors.pop(key, None)
        except Exception:
            self.metrics.reconcile_errors.labels(handler=handler).inc()
            errors = self._errors[key] = self._errors.get(key, 0) + 1
            delay = min(RETRY_AFTER_ERROR * 2 ** (errors - 1), self.settings.resync_interval)
            log.exception("reconcile of %s/%s failed; retrying in %gs", *key, delay)
            if key in self.known:
                self._schedule(key, delay)
        finally:
            self.metrics.reconcile_seconds.labels(handler=handler).observe(
                time.perf_counter() - start
            )

    def reconcile(self, namespace: str, name: str) -> None:
        obj = self.cluster.read_job(namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.forget(namespace, name)
            return
        pods = [view(p) for p in self.cluster.list_pods(obj)]
        now = self.cluster.now()
        nodes = {
            node: self.cluster.node_ready(node)
            for node in policy.stuck_nodes(pods, now, self.settings)
        }
        plan = policy.decide(obj, pods, now, self.settings, nodes)
        self.apply(obj, plan, now)

    def apply(self, obj: dict[str, Any], plan: policy.Plan, now: datetime) -> None:
        """Carry out ``plan`` in an order a crash at any point cannot make wrong: the rank
        table (what the pods read), then the status (the intent: attempt, restarts) under a
        resourceVersion precondition, then the deletions, then the creations; a refused
        creation is written to the status as a second step."""
        job = Job.from_object(obj)
        key = (job.namespace, job.name)
        labels = {"namespace": job.namespace, "accelerator": job.accelerator}
        if plan.rank_table is not None:
            self.cluster.write_config_map(
                obj, job.rank_table_configmap, {ranktable.KEY: plan.rank_table}
            )
        stored = self.cluster.patch_status(obj, plan.status)
        for name in dict.fromkeys(plan.delete):
            self.cluster.delete_pod(job.namespace, name)
        for name in dict.fromkeys(plan.force_delete):
            self.cluster.delete_pod(job.namespace, name, force=True)
        if plan.create:
            try:
                self.create_children(job, obj, plan)
            except ApiError as err:
                if not 400 <= err.status < 500:
                    raise
                # The API refused a child (quota, admission, a foreign object with our name):
                # the job says so and creation backs off; the pods that exist stay.
                status = copy.deepcopy(plan.status)
                delay, event = policy.creation_refused(status, err.message, now, self.settings)
                stored = self.cluster.patch_status(stored, status)
                plan.events.append(event)
                plan.due_in(delay)
        for event in plan.events:
            self._events.put((stored, event))
        for counter in plan.counters:
            self.metrics.count(counter, **labels)
        self.phases[key] = plan.status.get("phase", policy.PENDING)
        self.metrics.set_phases(list(self.phases.values()))
        if plan.delete_job:
            self.cluster.delete_job(job.namespace, job.name)
        elif plan.requeue_after is not None and plan.requeue_after < self.settings.resync_interval:
            self._schedule(key, plan.requeue_after)

    def create_children(self, job: Job, obj: dict[str, Any], plan: policy.Plan) -> None:
        for child in render_shared(job).objects():
            self.cluster.create(child, obj)
        labels = {"namespace": job.namespace, "accelerator": job.accelerator}
        for index in plan.create:
            pod = render_pod(job, index, self.settings.trainer_image, plan.status["attempt"])
            if self.cluster.create(pod, obj):
                self.metrics.pods_created.labels(**labels).inc()
                note = pod["metadata"]["annotations"].get(ANNOTATION_PRIVILEGED)
                if note:
                    message = f"{pod['metadata']['name']}: {note}"
                    plan.events.append(policy.Event(policy.WARNING, "PrivilegedPod", message))

    def _schedule(self, key: Key, seconds: float) -> None:
        timer = threading.Timer(seconds, self.trigger, args=(*key, "timer"))
        timer.daemon = True
        with self._timers_lock:
            old = self._timers.pop(key, None)
            if old:
                old.cancel()
            self._timers[key] = timer
        timer.start()

    # --- background loops ---------------------------------------------------------------
    def _resync_loop(self) -> None:
        while not self._stop.wait(self.settings.resync_interval):
            for key in list(self.known):
                self.trigger(*key, "resync")

    def _event_loop(self) -> None:
        while not self._stop.is_set():
            try:
                obj, event = self._events.get(timeout=1.0)
            except queue.Empty:
                continue
            self.cluster.post_event(obj, event)

    def _progress_loop(self) -> None:
        """Every interval, the progress of every Running job, read concurrently (a bounded
        pool): one slow endpoint delays no other job's read."""
        with ThreadPoolExecutor(progress.READERS, thread_name_prefix="progress") as pool:
            while not self._stop.wait(self.settings.progress_interval):
                running = [
                    key
                    for key, phase in list(self.phases.items())
                    if phase == policy.RUNNING and self.active.is_set()
                ]
                for _ in pool.map(self._read_progress_logged, running):
                    pass

    def _read_progress_logged(self, key: Key) -> None:
        try:
            self.read_progress(*key)
        except Exception:
            log.exception("reading the progress of %s/%s failed", *key)

    def read_progress(self, namespace: str, name: str) -> None:
        obj = self.cluster.read_job(namespace, name)
        if obj is None:
            return
        job = Job.from_object(obj)
        status = obj.get("status") or {}
        pods = self.cluster.list_pods(obj)
        url = progress.chief_endpoint(
            job, status, pods, self.cluster.node_labels, self.settings.no_scrape_labels()
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
        new = progress.progress(progress.parse(text), job.spec, self._samples.get(key), now)
        if "step" in new:
            self._samples[key] = progress.Sample(new["step"], now)
        message = progress.fallback_event(status.get("progress") or {}, new)
        if message:
            self._events.put((obj, policy.Event(policy.WARNING, "CheckpointFallback", message)))
        self.cluster.patch_status(obj, {**status, "progress": new}, precondition=False)
