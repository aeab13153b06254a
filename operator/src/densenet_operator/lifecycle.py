"""The job's state machine (its lifecycle): job and pods in, the next status and what to do
out. Pure: no I/O, no clock.

Level-based: every call looks at the whole job and every pod it owns and returns the complete
next status plus the actions that bring the cluster there. The state that must survive an
operator restart lives in the job's status (attempt, launchedAttempt, restarts, times), so a
call after a crash at any point decides the same thing again; actions are idempotent (create by
deterministic name, delete what should not exist), and the reconciler writes the status (the
intent: a new attempt, a counted restart) before it deletes or creates a pod.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import kueue, schema
from .job import Job
from .pods import PERMANENT_EXITS, Outcome, PodView, first_cause, parse_time
from .render import ranktable
from .settings import Settings

PENDING = "Pending"
INITIALIZING = "Initializing"
RUNNING = "Running"
RESTARTING = "Restarting"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUSPENDED = "Suspended"
# Pods created and held by Kueue's admission gate until the whole group fits the quota.
QUEUED = "Queued"
FINISHED = (SUCCEEDED, FAILED)

NORMAL = "Normal"
WARNING = "Warning"

# Reason of a job that breaks the cluster admin's policy (admission.py).
POLICY_VIOLATION = "PolicyViolation"
# Condition when the API refuses a child object, as a ReplicaSet reports it.
REPLICA_FAILURE = "ReplicaFailure"
# Condition when pods of an old attempt stay terminating on a healthy node (a finalizer, a
# process that ignores SIGTERM past its grace period): the next attempt waits for them.
NOT_TERMINATING = "PodsNotTerminating"
# Grace period of the surviving pods of a failed attempt (Plan.quick_delete): SIGTERM, then
# SIGKILL a second later; the next attempt still waits until they are gone.
QUICK_GRACE_SECONDS = 1
# A Running job whose step has not moved for runPolicy.progressDeadlineSeconds.
STALLED = "Stalled"
STALL_DEADLINE = schema.spec_default("runPolicy", "progressDeadlineSeconds")
STALL_ACTION = schema.spec_default("runPolicy", "stalledAction")


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Plan:
    status: dict[str, Any]
    create: list[int] = field(default_factory=list)  # replica indexes of the current attempt
    delete: list[str] = field(default_factory=list)  # pod names, with their grace period
    # pods of a failed attempt: their trainers wait in a collective for the peer that died and
    # cannot checkpoint, so their grace period would only delay the restart
    quick_delete: list[str] = field(default_factory=list)
    force_delete: list[str] = field(default_factory=list)  # pods stuck terminating
    events: list[Event] = field(default_factory=list)
    rank_table: str | None = None  # new hccl.json to write
    delete_job: bool = False
    requeue_after: float | None = None  # seconds until something is due (backoff, TTL, ...)
    counters: list[str] = field(default_factory=list)  # created, succeeded, failed, restarted
    # pods to mark as ending their Kueue group (kueue.RETRIABLE_ANNOTATION), before deletions
    end_group: list[str] = field(default_factory=list)

    def due_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.5)
        self.requeue_after = min(self.requeue_after or seconds, seconds)


def set_condition(status: dict[str, Any], condition: dict[str, str], now: datetime) -> None:
    """Set one condition ({type, status, reason, message}); lastTransitionTime moves only when
    its status changes, and a condition that never held is not listed."""
    conditions = status.setdefault("conditions", [])
    for existing in conditions:
        if existing["type"] == condition["type"]:
            if existing["status"] != condition["status"]:
                existing["lastTransitionTime"] = timestamp(now)
            existing.update(condition)
            return
    if condition["status"] == "True":
        conditions.append({**condition, "lastTransitionTime": timestamp(now)})


def _logs_hint(job: Job, pod: PodView) -> str:
    return f"see kubectl logs -n {job.namespace} {pod.name}"


class Decider:
    """One reconcile decision; methods mutate ``self.plan`` only."""

    def __init__(
        self,
        job: Job,
        obj: dict[str, Any],
        pods: list[PodView],
        now: datetime,
        settings: Settings,
        *,
        nodes_ready: Mapping[str, bool | None] | None = None,
        violations: list[str] | None = None,
        queue_message: str = "",
        pod_warnings: Mapping[str, str] | None = None,
    ) -> None:
        self.job = job
        self.queue_message = queue_message  # Kueue's reason the group waits (kueue.py)
        # pod -> its newest Warning Event, for pods silent_pending() names
        self.pod_warnings = pod_warnings or {}
        self.nodes_ready = nodes_ready or {}  # node -> Ready (None: gone), for stuck pods
        self.violations = violations or []  # the admin policy's refusals (admission.py)
        self.obj = obj
        self.pods = pods
        self.now = now
        self.settings = settings
        self.old = obj.get("status") or {}
        self.status = copy.deepcopy(self.old)
        self.plan = Plan(status=self.status)
        self.table_ready = False
        self.not_terminating: list[str] = []

    # --- transitions -------------------------------------------------------------------
    def condition(self, kind: str, value: bool, reason: str, message: str) -> None:
        state = {"type": kind, "status": "True" if value else "False"}
        set_condition(self.status, {**state, "reason": reason, "message": message}, self.now)

    def set_phase(self, phase: str, reason: str, message: str) -> None:
        before = self.status.get("phase")
        self.status["phase"] = phase
        if before != phase:
            kind = WARNING if phase in (FAILED, RESTARTING) else NORMAL
            self.plan.events.append(Event(kind, reason, message))

    def fail(self, reason: str, message: str) -> None:
        self.set_phase(FAILED, reason, message)
        self.status["completionTime"] = timestamp(self.now)
        self.condition("Failed", True, reason, message)
        self.condition(RUNNING, False, reason, "the job failed")
        self.plan.counters.append("failed")
        self.finished()

    def succeed(self) -> None:
        message = f"all {self.job.replicas} workers exited 0"
        self.set_phase(SUCCEEDED, "AllWorkersSucceeded", message)
        self.status["completionTime"] = timestamp(self.now)
        self.condition("Succeeded", True, "AllWorkersSucceeded", message)
        self.condition(RUNNING, False, "AllWorkersSucceeded", message)
        self.plan.counters.append("succeeded")
        self.finished()

    def new_attempt(self, failed: bool = False) -> None:
        """Every pod of the current attempt becomes stale and is deleted: with its grace
        period (trainers checkpoint on SIGTERM), or after a failure (a crash, a stall) within
        QUICK_GRACE_SECONDS, since the survivors are stuck and resume from the last periodic
        checkpoint anyway; the next attempt's pods start afresh once these are gone."""
        self.delete_pods([p for p in self.pods if not p.deleting], quick=failed)
        self.status["attempt"] = self.attempt + 1
        if self.uses_device_plugin_table():
            self.status["rankTable"] = {
                "state": ranktable.INITIALIZING,
                "version": self.job.spec["ascend"]["rankTableVersion"],
                "reason": "a new set of pods starts",
            }
            self.plan.rank_table = ranktable.INITIALIZING_TEXT

    def restart(self, counted: bool, cause: str) -> None:
        if counted:
            restarts = self.status.get("restarts", 0) + 1
            limit = self.job.spec["runPolicy"]["backoffLimit"]
            if restarts > limit:
                self.fail(
                    "BackoffLimitExceeded",
                    f"{limit} restarts did not help (backoffLimit {limit}); last cause: {cause}",
                )
                return
            self.status["restarts"] = restarts
            delay = min(self.settings.backoff_base * 2 ** (restarts - 1), self.settings.backoff_max)
            reason = "WorkerFailed"
        else:
            self.status["preemptions"] = self.status.get("preemptions", 0) + 1
            delay = 0.0
            reason = "WorkerPreempted"
        self.new_attempt(failed=counted)
        self.open_goodput_record()
        self.status["nextAttemptTime"] = timestamp(self.now + timedelta(seconds=delay))
        message = f"restarting the whole job from its last checkpoint: {cause}"
        if counted:
            message += f" (restart {self.status['restarts']} of {limit}, in {delay:g}s)"
        else:
            message += " (not counted against backoffLimit)"
        self.set_phase(RESTARTING, reason, message)
        self.condition(RESTARTING, True, reason, message)
        self.plan.counters.append("restarted")
        self.plan.due_in(delay)

    def open_goodput_record(self) -> None:
        """status.goodput: when this restart happened and the step the job had reached; the
        progress reader closes the record at the new attempt's first step (progress.recovered).
        A restart before that recovery extends the open record: one recovery, timed from the
        first restart, losing the steps since the furthest step reached."""
        goodput = self.status.setdefault("goodput", {})
        goodput.setdefault("restartedAt", timestamp(self.now))
        step = (self.status.get("progress") or {}).get("step")
        if step is not None:
            goodput["stepAtRestart"] = max(int(step), int(goodput.get("stepAtRestart", 0)))

    # --- views -------------------------------------------------------------------------
    def find_condition(self, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.status.get("conditions", []) if c["type"] == kind), None)

    @property
    def attempt(self) -> int:
        return int(self.status.get("attempt", 0))

    def current(self) -> dict[int, PodView]:
        return {
            p.index: p
            for p in self.pods
            if p.attempt == self.attempt and not p.deleting and 0 <= p.index < self.job.replicas
        }

    def uses_device_plugin_table(self) -> bool:
        spec = self.job.spec
        return (
            spec["accelerator"]["type"] == "ascend" and spec["ascend"]["source"] == "devicePlugin"
        )

    # --- steps -------------------------------------------------------------------------
    def delete_pods(self, which: list[PodView], quick: bool = False) -> None:
        """Delete with the grace period; a pod still there force_delete_after past it (the
        API server's deletionTimestamp, compared with the API server's clock) is
        force-deleted only when its node is NotReady or gone: on a healthy node its trainer
        may still be writing the checkpoint, so the job waits and says why."""
        for pod in which:
            if not pod.deleting:
                (self.plan.quick_delete if quick else self.plan.delete).append(pod.name)
            elif pod.deletion_time is not None:
                stuck = pod.deletion_time + timedelta(seconds=self.settings.force_delete_after)
                if self.now < stuck:
                    self.plan.due_in((stuck - self.now).total_seconds())
                elif pod.node_name and self.nodes_ready.get(pod.node_name, True) is True:
                    self.not_terminating.append(stuck_message(pod))
                elif pod.name not in self.plan.force_delete:
                    self.plan.force_delete.append(pod.name)

    def finished(self) -> None:
        """cleanPodPolicy and ttlSecondsAfterFinished of a finished job; a failed job under
        Kueue ends its pod group, or Kueue would hold the quota for replacement pods (a
        succeeded group ends when all its pods have)."""
        if self.status.get("phase") == FAILED and kueue.uses_kueue(self.job.spec):
            self.plan.end_group = kueue.not_yet_ended([p.source for p in self.pods])
        run_policy = self.job.spec["runPolicy"]
        policy = run_policy["cleanPodPolicy"]
        if policy == "All":
            self.delete_pods([p for p in self.pods if not p.deleting])
        elif policy == "Running":
            self.delete_pods([p for p in self.pods if p.active])
        ttl = run_policy.get("ttlSecondsAfterFinished")
        done = parse_time(self.status.get("completionTime"))
        if ttl is not None and done is not None:
            remaining = (done + timedelta(seconds=ttl) - self.now).total_seconds()
            if remaining <= 0:
                self.plan.delete_job = True
            else:
                self.plan.due_in(remaining)

    def count_replicas(self) -> None:
        current = list(self.current().values())
        self.status["replicas"] = {
            "active": sum(p.active for p in current),
            "succeeded": sum(p.phase == SUCCEEDED for p in current),
            "failed": sum(p.phase == FAILED for p in current),
        }

    def first_look(self) -> None:
        if "phase" in self.old:
            return
        spec = self.job.spec["accelerator"]
        self.status.update(
            phase=PENDING,
            accelerator=f"{spec['type']} x{spec['perPod']}",
            attempt=0,
            restarts=0,
            preemptions=0,
            startTime=timestamp(self.now),
        )
        if self.uses_device_plugin_table():
            self.status["rankTable"] = {
                "state": ranktable.INITIALIZING,
                "version": self.job.spec["ascend"]["rankTableVersion"],
                "reason": "waiting for the pods",
            }
        self.plan.events.append(
            Event(NORMAL, "Created", f"{self.job.replicas} x {self.status['accelerator']} workers")
        )
        self.plan.counters.append("created")

    def deadline_passed(self) -> bool:
        deadline = self.job.spec["runPolicy"].get("activeDeadlineSeconds")
        start = parse_time(self.status.get("startTime"))
        if deadline is None or start is None:
            return False
        remaining = (start + timedelta(seconds=deadline) - self.now).total_seconds()
        if remaining > 0:
            self.plan.due_in(remaining)
            return False
        self.fail("DeadlineExceeded", f"the job ran longer than activeDeadlineSeconds={deadline}")
        return True

    def suspended(self) -> bool:
        suspend = self.job.spec["runPolicy"]["suspend"]
        phase = self.status.get("phase")
        if suspend:
            if phase != SUSPENDED:
                self.new_attempt()
                message = "pods deleted with their grace period; they resume from the checkpoint"
                self.set_phase(SUSPENDED, "Suspended", message)
                self.condition(SUSPENDED, True, "Suspended", message)
            else:
                self.delete_pods(self.pods)  # and report the ones that will not go
            return True
        if phase == SUSPENDED:
            self.set_phase(PENDING, "Resumed", "the job resumes from its last checkpoint")
            self.condition(SUSPENDED, False, "Resumed", "spec.runPolicy.suspend is false")
        return False

    def handle_ends(self, current: dict[int, PodView]) -> bool:
        """React to ended or lost pods of the current attempt; True when the job moved on."""
        ended = [(p, p.outcome()) for p in current.values()]
        failed = [(p, o) for p, o in ended if o not in (None, Outcome.OK)]
        permanent = [p for p, o in failed if o is Outcome.PERMANENT]
        if permanent:
            pod = permanent[0]
            reason = PERMANENT_EXITS[pod.exit_code][0]
            self.fail(reason, f"{reason}: {pod.describe_end()}; {_logs_hint(self.job, pod)}")
            return True
        retry = [p for p, o in failed if o is Outcome.RETRY]
        if retry:
            cause = first_cause(retry)
            self.restart(True, f"{cause.describe_end()}; {_logs_hint(self.job, cause)}")
            return True
        if failed:
            self.restart(False, failed[0][0].describe_end())
            return True
        # A missing pod is lost once the attempt was launched; a pod of this attempt being
        # deleted is lost even before that pass ran (only a new attempt deletes our own).
        launched = self.status.get("launchedAttempt") == self.attempt
        deleted = {p.index: p for p in self.pods if p.attempt == self.attempt and p.deleting}
        lost = [
            i for i in range(self.job.replicas) if i not in current and (launched or i in deleted)
        ]
        if lost and not all(p.outcome() is Outcome.OK for p in current.values()):
            # A pod first seen already deleting may still say who stopped it (Kueue marks a
            # pod, then deletes it; one watch event can bring both).
            told = [deleted[i] for i in lost if i in deleted and deleted[i].evicted]
            if told:
                self.restart(False, told[0].describe_end())
            else:
                names = ", ".join(self.job.pod_name(i) for i in lost)
                self.restart(False, f"{names} disappeared (deleted or its node was lost)")
            return True
        return False

    def launch(self, current: dict[int, PodView]) -> None:
        """Create the current attempt's missing pods once the old ones are gone."""
        next_time = parse_time(self.status.get("nextAttemptTime"))
        if next_time is not None and self.now < next_time:
            self.plan.due_in((next_time - self.now).total_seconds())
            return
        names_in_use = {p.name for p in self.pods if p.attempt != self.attempt or p.deleting}
        missing = [i for i in range(self.job.replicas) if i not in current]
        if any(self.job.pod_name(i) in names_in_use for i in missing):
            return  # old pods still terminating: their deletion events bring us back
        self.plan.create = missing
        if missing:
            return
        # Every pod of the attempt exists: only now is a pod that disappears a lost one.
        self.status["launchedAttempt"] = self.attempt
        if self.status.pop("createFailures", None) is not None:
            message = f"all {self.job.replicas} pods of attempt {self.attempt} exist"
            self.condition(REPLICA_FAILURE, False, "Created", message)

    def rank_table(self, current: dict[int, PodView]) -> bool:
        """Complete the device-plugin rank table; True once it is complete."""
        if not self.uses_device_plugin_table():
            return True
        state = ranktable.from_pods(self.job, [p.source for p in current.values()])
        version = self.job.spec["ascend"]["rankTableVersion"]
        old = self.status.get("rankTable") or {}
        self.status["rankTable"] = {
            "state": state.state,
            "version": version,
            "reason": state.reason,
        }
        if state.state == ranktable.COMPLETED and old.get("state") != ranktable.COMPLETED:
            self.plan.rank_table = state.text
            self.plan.events.append(
                Event(
                    NORMAL,
                    "RankTableCompleted",
                    f"{self.job.rank_table_configmap}: "
                    f"{self.job.replicas * self.job.per_pod} devices",
                )
            )
        return state.state == ranktable.COMPLETED

    def queued(self, current: dict[int, PodView]) -> bool:
        """The Queued phase and condition while Kueue holds the group's pods at its admission
        gate; the condition turns False once Kueue lifts the gate. True while queued."""
        gated = [p for p in current.values() if kueue.ADMISSION_GATE in p.gates]
        if gated and len(current) == self.job.replicas:
            queue = self.job.spec["scheduling"]["gang"]["queue"]
            why = self.queue_message or "Kueue has not said why yet"
            message = (
                f"waiting for Kueue to admit all {self.job.replicas} pods "
                f"(LocalQueue {queue}): {why}"
            )
            self.set_phase(QUEUED, "WaitingForAdmission", message)
            self.condition(QUEUED, True, "WaitingForAdmission", message)
            return True
        if not gated and (self.find_condition(QUEUED) or {}).get("status") == "True":
            self.condition(QUEUED, False, "Admitted", "Kueue admitted the group")
        return False

    def not_starting(self, current: dict[int, PodView]) -> None:
        stuck = []
        for pod in current.values():
            if pod.phase != PENDING or pod.created is None or kueue.ADMISSION_GATE in pod.gates:
                continue  # a gated pod is queued (the Queued condition), not stuck
            waited = (self.now - pod.created).total_seconds()
            if waited >= self.settings.pending_timeout:
                detail = (
                    pod.not_started_message
                    or self.pod_warnings.get(pod.name)
                    or "no message from the scheduler or kubelet"
                )
                stuck.append(f"{pod.name}: {pod.not_started_reason or 'Pending'}: {detail}")
            else:
                self.plan.due_in(self.settings.pending_timeout - waited)
        message = "; ".join(stuck)
        if stuck:
            self.condition("PodsNotStarting", True, "PodsNotStarting", message)
        elif self.find_condition("PodsNotStarting"):
            self.condition("PodsNotStarting", False, "PodsStarted", "")

    def progress_phase(self, current: dict[int, PodView]) -> None:
        if len(current) == self.job.replicas and all(
            p.outcome() is Outcome.OK for p in current.values()
        ):
            self.succeed()
            return
        table_ready = self.table_ready
        all_running = len(current) == self.job.replicas and all(
            p.running or p.phase == SUCCEEDED for p in current.values()
        )
        queued = self.queued(current)
        if all_running and table_ready:
            self.set_phase(RUNNING, "AllWorkersRunning", f"{self.job.replicas} workers running")
            self.condition(RUNNING, True, "AllWorkersRunning", "")
            restarting = self.find_condition(RESTARTING)
            if restarting and restarting["status"] == "True":
                message = f"recovered; the last restart was for: {restarting['message']}"
                self.condition(RESTARTING, False, "AllWorkersRunning", message)
            if self.job.metrics_port is not None:  # the step is read from the chief's /metrics
                self.check_stalled(current)
        elif (self.find_condition(STALLED) or {}).get("status") == "True":
            self.condition(STALLED, False, "NotRunning", "the workers are not all running")
        elif not queued and (self.status.get("phase") != RESTARTING or current):
            scheduled = len(current) == self.job.replicas and all(
                p.node_name for p in current.values()
            )
            if scheduled:
                waiting = "the rank table" if not table_ready else "workers to start"
                self.set_phase(INITIALIZING, "Initializing", f"waiting for {waiting}")
            elif self.status.get("phase") != RESTARTING:
                self.set_phase(PENDING, "Pending", "waiting for pods to be created and scheduled")
        self.not_starting(current)

    def check_stalled(self, current: dict[int, PodView]) -> None:
        """The Stalled condition of a Running job: no new step (status.progress.stepTime, or
        the current pods' start before their first step) for progressDeadlineSeconds."""
        policy = self.job.spec["runPolicy"]
        seconds = policy.get("progressDeadlineSeconds") or STALL_DEADLINE
        deadline = timedelta(seconds=seconds)
        progress = self.status.get("progress") or {}
        moved = parse_time(progress.get("stepTime"))
        started = max((p.created for p in current.values() if p.created), default=None)
        since = max((t for t in (moved, started) if t is not None), default=None)
        stalled = self.find_condition(STALLED)
        if since is None or self.now < since + deadline:
            if stalled and stalled["status"] == "True":
                self.condition(
                    STALLED, False, "Progressing", f"moving again at step {progress.get('step', 0)}"
                )
            if since is not None:
                self.plan.due_in((since + deadline - self.now).total_seconds())
            return
        if moved is not None and moved >= (started or moved):
            message = f"no new step since {timestamp(moved)}: the last was {progress.get('step')}"
        else:
            message = f"no step since the workers started at {timestamp(since)}"
        message += f" (progressDeadlineSeconds {seconds})"
        if policy.get("stalledAction", STALL_ACTION) == "Restart":
            self.condition(STALLED, False, "Restarted", message)
            self.restart(counted=True, cause=f"stalled: {message}")
            return
        if not (stalled and stalled["status"] == "True"):
            self.plan.events.append(Event(WARNING, "Stalled", message))
        self.condition(STALLED, True, "NoProgress", message)

    def decide(self) -> Plan:
        self.first_look()
        self.status["observedGeneration"] = self.obj["metadata"].get("generation", 0)
        if self.violations and self.status.get("phase") not in FINISHED:
            # Admitted before the admin's policy existed (or changed): held to it now.
            self.fail(POLICY_VIOLATION, "; ".join(self.violations))
        elif self.status.get("phase") in FINISHED:
            self.finished()
        elif not self.deadline_passed() and not self.suspended():
            self.delete_pods([p for p in self.pods if p.attempt != self.attempt])
            current = self.current()
            # Before the ends: a table completed just as a worker exits is still written.
            self.table_ready = self.rank_table(current)
            if not self.handle_ends(current):
                self.launch(current)
                self.progress_phase(current)
        if kueue.uses_kueue(self.job.spec):
            # An ended attempt's pod group (a restart, preemption, suspension) ends too.
            stale = [p.source for p in self.pods if p.attempt != self.attempt]
            ending = [*self.plan.end_group, *kueue.not_yet_ended(stale)]
            self.plan.end_group = list(dict.fromkeys(ending))
        self.count_replicas()
        if self.not_terminating:
            message = "; ".join(self.not_terminating)
            self.condition(NOT_TERMINATING, True, "PodsNotTerminating", message)
        elif self.find_condition(NOT_TERMINATING):
            self.condition(NOT_TERMINATING, False, "PodsTerminated", "")
        return self.plan


def is_stalled(status: dict[str, Any]) -> bool:
    return any(c["type"] == STALLED and c["status"] == "True" for c in status.get("conditions", []))


def stuck_message(pod: PodView) -> str:
    finalizers = pod.source["metadata"].get("finalizers") or []
    held = f"held by finalizers {', '.join(finalizers)}" if finalizers else "still running"
    return (
        f"{pod.name} is terminating past its grace period on healthy node {pod.node_name} "
        f"({held}); the next attempt waits for it"
    )


def stuck_nodes(pods: list[PodView], now: datetime, settings: Settings) -> set[str]:
    """Nodes of pods terminating longer than force_delete_after past their grace period: the
    decision needs to know whether each is Ready."""
    after = timedelta(seconds=settings.force_delete_after)
    return {
        p.node_name
        for p in pods
        if p.node_name and p.deletion_time is not None and now >= p.deletion_time + after
    }


def silent_pending(pods: list[PodView], now: datetime, settings: Settings) -> list[str]:
    """Pods Pending past the pending timeout whose status says nothing of why (a kubelet
    reports a volume it cannot mount only as an Event): the decision reads their Warnings."""
    return [
        p.name
        for p in pods
        if p.phase == PENDING
        and not p.deleting
        and not p.not_started_message
        and kueue.ADMISSION_GATE not in p.gates
        and p.created is not None
        and (now - p.created).total_seconds() >= settings.pending_timeout
    ]


def creation_refused(
    status: dict[str, Any], message: str, now: datetime, settings: Settings
) -> tuple[float, Event]:
    """Record in ``status`` that the API refused a child of the current attempt (a quota,
    admission, a foreign object with its name): the ReplicaFailure condition carries the
    API's message, and creation backs off (base * 2^(failures-1), capped) rather than churn
    pods. Returns the delay and the Warning Event."""
    failures = int(status.get("createFailures", 0)) + 1
    delay = min(settings.backoff_base * 2 ** (failures - 1), settings.backoff_max)
    status["createFailures"] = failures
    status["nextAttemptTime"] = timestamp(now + timedelta(seconds=delay))
    text = f"{message} (try {failures}; next in {delay:g}s)"
    state = {"type": REPLICA_FAILURE, "status": "True", "reason": "FailedCreate"}
    set_condition(status, {**state, "message": text}, now)
    return delay, Event(WARNING, "FailedCreate", text)


def decide(
    obj: dict[str, Any],
    pods: list[PodView],
    now: datetime,
    settings: Settings,
    nodes_ready: Mapping[str, bool | None] | None = None,
    *,
    violations: list[str] | None = None,
    queue_message: str = "",
    pod_warnings: Mapping[str, str] | None = None,
) -> Plan:
    """The next status of job ``obj`` (a defaulted DenseNetTrainingJob as stored) and the
    actions that get there, given every pod it owns and the readiness of the nodes of pods
    stuck terminating (stuck_nodes)."""
    return Decider(
        Job.from_object(obj),
        obj,
        pods,
        now,
        settings,
        nodes_ready=nodes_ready,
        violations=violations,
        queue_message=queue_message,
        pod_warnings=pod_warnings,
    ).decide()
