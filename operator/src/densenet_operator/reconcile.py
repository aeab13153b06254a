"""Runs the job's state machine (lifecycle.py) against the cluster: reads the job and its pods,
decides, and carries the plan out in a crash-safe order. When it runs is workqueue.py's
(coalesced per job, timers), Events go through events.py, progress through progress_poller.py;
every known job is looked at again on the resync interval."""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from . import admission, kueue, lifecycle
from .events import EventRecorder
from .job import ANNOTATION_PRIVILEGED, Job
from .kube import ApiError, Cluster, ForeignObjectError, owned_by
from .opmetrics import OperatorMetrics
from .pods import PodView, view
from .progress_poller import ProgressPoller
from .render import ranktable, render_pod, render_shared
from .settings import Settings
from .workqueue import Coalescer, Timers

log = logging.getLogger("densenet_operator")
Key = tuple[str, str]  # namespace, name
# A reconcile that failed (the API server down, a 5xx past the client's retries) is tried
# again after this long, doubling to the resync interval.
RETRY_AFTER_ERROR = 1.0
# Decisions made again at once when the job changed under them (a 409 on the status write).
CONFLICT_RETRIES = 3
# Creations in flight at once, all jobs together: a job's pods are created side by side (one
# round trip for all of them, not one per pod), and jobs' creations queue in arrival order.
CREATORS = 8


class Reconciler:
    def __init__(self, cluster: Cluster, settings: Settings, metrics: OperatorMetrics) -> None:
        self.cluster = cluster
        self.settings = settings
        self.metrics = metrics
        self.coalescer = Coalescer()
        self.phases: dict[Key, str] = {}
        self.known: set[Key] = set()  # every job seen: the resync visits each
        self.stalled: set[Key] = set()  # jobs whose Stalled condition is True
        # kopf's index of the operator's pods by (namespace, job name), set by the handlers
        # before the first trigger; read, never written, here.
        self.pod_index: Mapping[Key, Iterable[dict[str, Any]]] = {}
        self._errors: dict[Key, int] = {}  # consecutive failed reconciles, for the retry delay
        self.timers = Timers(lambda key: self.trigger(*key, "timer"))  # type: ignore[misc]
        self._pod_marks: dict[str, tuple] = {}  # pod uid -> what the decision last saw
        # Jobs as their watch event brought them, while the operator has never written their
        # status: a new job's first reconcile decides on it without reading it again.
        self._unwritten: dict[Key, dict[str, Any]] = {}
        # Set when the operator stops (kopf's cleanup, or a lost Lease): kopf's stop flag too.
        self.stopped = threading.Event()
        # Set while this replica acts: always without leader election, else while it holds
        # the Lease. A follower keeps its watches and the list of jobs, and does nothing else.
        self.active = threading.Event()
        self.events = EventRecorder(cluster)
        self.progress = ProgressPoller(cluster, settings, metrics, self.events, self.pods_of)
        self.creators = ThreadPoolExecutor(CREATORS, thread_name_prefix="create")
        self._threads: list[threading.Thread] = []

    # --- entry points -------------------------------------------------------------------
    def trigger(
        self, namespace: str, name: str, handler: str, body: Mapping[str, Any] | None = None
    ) -> None:
        """Reconcile the job now (or once more after the run in progress). ``body``: the job
        as its watch event has it; used only while it has no status (see reconcile)."""
        key = (namespace, name)
        self.known.add(key)
        if not self.active.is_set():
            return
        if body is not None and not body.get("status"):
            self._unwritten[key] = copy.deepcopy(dict(body))
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
        self._unwritten.pop(key, None)
        self._errors.pop(key, None)
        self.phases.pop(key, None)
        self.stalled.discard(key)
        self.metrics.jobs_stalled.set(len(self.stalled))
        self.progress.forget(key)
        self.timers.cancel(key)
        self.metrics.set_phases(list(self.phases.values()))

    def start(self) -> None:
        loops = {
            "resync": (self._resync_loop,),
            "events": (self.events.run, self.stopped),
            "progress": (self.progress.run, self.stopped, self._running),
        }
        for name, (target, *args) in loops.items():
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stopped.set()
        self.timers.cancel_all()
        self.creators.shutdown(wait=False, cancel_futures=True)

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
                self.timers.schedule(key, delay)
        finally:
            self.metrics.reconcile_seconds.labels(handler=handler).observe(
                time.perf_counter() - start
            )

    def reconcile(self, namespace: str, name: str) -> None:
        # A job with no status yet is taken as its event brought it: every decision on it
        # writes its first status before any other write, under a resourceVersion
        # precondition, so a stale copy ends in a 409 and a fresh read (_timed).
        obj = self._unwritten.pop((namespace, name), None) or self.cluster.read_job(namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.end_groups_of_deleted(namespace, name)
            self.forget(namespace, name)
            return
        pods = [view(p) for p in self.pods_of(obj)]
        now = self.cluster.now()
        nodes = {
            node: self.cluster.node_ready(node)
            for node in lifecycle.stuck_nodes(pods, now, self.settings)
        }
        plan = lifecycle.decide(
            obj,
            pods,
            now,
            self.settings,
            nodes,
            violations=self.violations(obj),
            queue_message=self.queue_message(namespace, pods),
            pod_warnings={
                pod: self.cluster.pod_warning(namespace, pod)
                for pod in lifecycle.silent_pending(pods, now, self.settings)
            },
        )
        self.apply(obj, plan, now)

    def end_groups_of_deleted(self, namespace: str, name: str) -> None:
        """A deleted job's pods (the garbage collector deleting them) end their Kueue group:
        Kueue keeps a group's quota, and its finalizer on the pods, until it is ended."""
        leaving = [
            p
            for p in self.pod_index.get((namespace, name), ())
            if p["metadata"].get("deletionTimestamp")
        ]
        for pod in kueue.not_yet_ended(leaving):
            self.cluster.annotate_pod(namespace, pod, {kueue.RETRIABLE_ANNOTATION: "false"})

    def queue_message(self, namespace: str, pods: list[PodView]) -> str:
        """Kueue's reason the job's pod group waits at its admission gate (its Workload's
        QuotaReserved condition); read only while a live pod of the job is gated."""
        gated = [p for p in pods if kueue.ADMISSION_GATE in p.gates and not p.deleting]
        group = (
            (gated[0].source["metadata"].get("labels") or {}).get(kueue.GROUP_LABEL)
            if gated
            else None
        )
        if not group:
            return ""
        return kueue.waiting_reason(self.cluster.workload(namespace, group))

    def violations(self, obj: dict[str, Any]) -> list[str]:
        """What the admin's installed policy (--admission-policy) refuses in job ``obj``; a
        finished job is not looked at again."""
        name = self.settings.admission_policy
        if not name or (obj.get("status") or {}).get("phase") in lifecycle.FINISHED:
            return []
        policy = self.cluster.admission_policy(name)
        namespace = self.cluster.namespace(obj["metadata"]["namespace"])
        if policy is None or namespace is None:
            return []
        return admission.violations(policy, obj, namespace)

    def pods_of(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """The pods of job ``obj`` as kopf's index has them: those with its name's label
        whose controller is this job (its uid), so pods left by an earlier job of the name
        are not its own. list() copies the index's store in one step (no Python code runs
        while it iterates), so kopf's updates on its own thread cannot tear it."""
        meta = obj["metadata"]
        pods = list(self.pod_index.get((meta["namespace"], meta["name"]), ()))
        return [pod for pod in pods if owned_by(pod, meta["uid"])]

    def apply(self, obj: dict[str, Any], plan: lifecycle.Plan, now: datetime) -> None:
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
        for name in plan.end_group:  # before any deletion: Kueue reads it off the pod
            self.cluster.annotate_pod(job.namespace, name, {kueue.RETRIABLE_ANNOTATION: "false"})
        for name in dict.fromkeys(plan.delete):
            self.cluster.delete_pod(job.namespace, name)
        for name in dict.fromkeys(plan.quick_delete):
            self.cluster.delete_pod(job.namespace, name, grace=lifecycle.QUICK_GRACE_SECONDS)
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
                delay, event = lifecycle.creation_refused(status, err.message, now, self.settings)
                stored = self.cluster.patch_status(stored, status)
                plan.events.append(event)
                plan.due_in(delay)
        for event in plan.events:
            self.events.post(stored, event)
        for counter in plan.counters:
            self.metrics.count(counter, **labels)
        self.phases[key] = plan.status.get("phase", lifecycle.PENDING)
        self.metrics.set_phases(list(self.phases.values()))
        if lifecycle.is_stalled(plan.status):
            self.stalled.add(key)
        else:
            self.stalled.discard(key)
        self.metrics.jobs_stalled.set(len(self.stalled))
        if plan.delete_job:
            self.cluster.delete_job(job.namespace, job.name)
        elif plan.requeue_after is not None and plan.requeue_after < self.settings.resync_interval:
            self.timers.schedule(key, plan.requeue_after)

    def create_children(self, job: Job, obj: dict[str, Any], plan: lifecycle.Plan) -> None:
        """The job's shared objects, then its pods, each group in one round trip. A refusal
        is raised once every request of its group has ended, so the pods that were created
        are counted and the backoff (apply) names what the API refused."""
        shared = list(render_shared(job, self.settings.network_access()).objects())
        refusal = self.create_all(shared, obj)[1]
        if refusal:
            raise refusal
        pods = [
            render_pod(job, index, self.settings.trainer_image, plan.status["attempt"])
            for index in plan.create
        ]
        labels = {"namespace": job.namespace, "accelerator": job.accelerator}
        created, refusal = self.create_all(pods, obj)
        for pod, new in zip(pods, created, strict=True):
            if not new:
                continue
            self.metrics.pods_created.labels(**labels).inc()
            note = pod["metadata"]["annotations"].get(ANNOTATION_PRIVILEGED)
            if note:
                message = f"{pod['metadata']['name']}: {note}"
                plan.events.append(lifecycle.Event(lifecycle.WARNING, "PrivilegedPod", message))
        if refusal:
            raise refusal

    def create_all(
        self, objects: list[dict[str, Any]], owner: dict[str, Any]
    ) -> tuple[list[bool], Exception | None]:
        """Create ``objects`` side by side (Cluster.create each): per object whether it is
        new, and the first error in the objects' order, once every request has ended."""
        futures = [self.creators.submit(self.cluster.create, o, owner) for o in objects]
        created: list[bool] = []
        first: Exception | None = None
        for future in futures:
            try:
                created.append(future.result())
            except Exception as err:
                created.append(False)
                first = first or err
        return created, first

    # --- background loops ---------------------------------------------------------------
    def _resync_loop(self) -> None:
        while not self.stopped.wait(self.settings.resync_interval):
            for key in list(self.known):
                self.trigger(*key, "resync")

    def _running(self) -> list[Key]:
        """Jobs whose progress is read: the Running ones, while this replica acts."""
        if not self.active.is_set():
            return []
        return [key for key, phase in list(self.phases.items()) if phase == lifecycle.RUNNING]
