"""What the operator reads from a trainer pod, and what its exit means. Pure.

The exit codes are the trainer's contract (``densenet_contract.exitcodes.ExitCode``), which
the trainer exits with and the operator imports instead of copying numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from densenet_contract.exitcodes import ExitCode

from .job import CONTAINER, LABEL_ATTEMPT, LABEL_INDEX
from .kueue import STOP_CONDITION


class Outcome(enum.Enum):
    OK = "ok"
    PERMANENT = "permanent"  # retrying cannot help: fail the job
    RETRY = "retry"  # restart the whole job, counted against backoffLimit
    DISRUPTION = "disruption"  # preempted or evicted: restart without counting


# Exit codes where a retry cannot help: the reason for the job's condition and what it means.
PERMANENT_EXITS: dict[int, tuple[str, str]] = {
    ExitCode.USAGE: ("UsageError", "bad or conflicting flags"),
    ExitCode.BAD_DATA: ("DataError", "bad data"),
    ExitCode.DIVERGED: ("Diverged", "loss diverged to NaN/inf"),
    ExitCode.MISSING_DEVICE: ("MissingDevice", "accelerator or vendor package missing"),
}
EXIT_OUTCOMES: dict[int | None, Outcome] = {
    ExitCode.OK: Outcome.OK,
    ExitCode.PREEMPTED: Outcome.DISRUPTION,
    **{code: Outcome.PERMANENT for code in PERMANENT_EXITS},
}
# Kubernetes marks pods it evicts or preempts with this condition (podFailurePolicy uses it).
DISRUPTION_CONDITION = "DisruptionTarget"


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class PodView:
    name: str
    index: int
    attempt: int
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    deleting: bool
    deletion_time: datetime | None
    created: datetime | None
    node_name: str
    exit_code: int | None  # the trainer container's, once terminated
    finished: datetime | None  # when the trainer container ended (whole seconds, as the API has)
    termination_reason: str  # Error, Completed, OOMKilled, ...
    evicted: bool
    stopped_by_kueue: str  # Kueue's reason and message when it stopped the pod's group
    not_started_reason: str  # Unschedulable, ImagePullBackOff, CreateContainerConfigError, ...
    not_started_message: str
    gates: tuple[str, ...]  # scheduling gates still on the pod (Kueue's admission gate)
    source: dict[str, Any]  # the pod as read, for functions that take pods (rank tables)

    @property
    def running(self) -> bool:
        return self.phase == "Running"

    @property
    def active(self) -> bool:
        return self.phase in ("Pending", "Running", "Unknown") and not self.deleting

    @property
    def killed(self) -> bool:
        """Ended by a signal or for memory rather than by the trainer's own exit."""
        code = self.exit_code
        return self.termination_reason == "OOMKilled" or (code is not None and code > 128)

    def outcome(self) -> Outcome | None:
        """What this pod's end means; None while it has not ended."""
        if self.evicted:
            return Outcome.DISRUPTION
        if self.phase == "Succeeded":
            return Outcome.OK
        if self.phase != "Failed":
            return None
        return EXIT_OUTCOMES.get(self.exit_code, Outcome.RETRY)

    def describe_end(self) -> str:
        """``worker-1 exited 3 (bad data)`` style text for conditions and events."""
        code = self.exit_code
        if self.stopped_by_kueue:
            what = f"was stopped by Kueue ({self.stopped_by_kueue})"
            if code == ExitCode.PREEMPTED:
                what += f", exited {code} (checkpoint written)"
        elif self.evicted:
            what = "was evicted or preempted by the cluster"
        elif code is None:
            what = f"failed ({self.termination_reason or 'no exit code'})"
        elif code in PERMANENT_EXITS:
            what = f"exited {code} ({PERMANENT_EXITS[code][1]})"
        elif code == ExitCode.PREEMPTED:
            what = f"exited {code} (preempted, checkpoint written)"
        elif self.termination_reason == "OOMKilled":
            what = f"was killed for memory (OOMKilled, exit {code})"
        elif code > 128:
            what = f"was killed by signal {code - 128} (exit {code})"
        else:
            what = f"exited {code} (crash)"
        return f"{self.name} {what}"


def _trainer_status(status: dict[str, Any]) -> dict[str, Any]:
    for container in status.get("containerStatuses") or []:
        if container.get("name") == CONTAINER:
            return container
    return {}


def _not_started(status: dict[str, Any]) -> tuple[str, str]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return condition.get("reason") or "Unschedulable", condition.get("message") or ""
    waiting = (_trainer_status(status).get("state") or {}).get("waiting") or {}
    return waiting.get("reason") or "", waiting.get("message") or ""


# What the operator reads of a pod (view, the rank table, the progress reader); the rest
# (the containers' specs, managedFields) is most of a pod's size and stays out of kopf's index.
_KEPT = {
    "metadata": (
        "name", "namespace", "uid", "labels", "annotations", "ownerReferences",
        "creationTimestamp", "deletionTimestamp", "finalizers",
    ),
    "spec": ("nodeName", "schedulingGates"),
    "status": ("phase", "reason", "podIP", "conditions", "containerStatuses"),
}  # fmt: skip


def indexed(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``pod`` the operator reads, as kopf's index keeps it (a 1,000-job
    cluster holds every pod there)."""
    return {
        part: {k: v for k, v in (pod.get(part) or {}).items() if k in keys}
        for part, keys in _KEPT.items()
    }


def view(pod: dict[str, Any]) -> PodView:
    """A pod (a dict as the API returns it) as the operator reads it."""
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    terminated = (_trainer_status(status).get("state") or {}).get("terminated") or {}
    conditions = status.get("conditions") or []
    stopped = next(
        (c for c in conditions if c.get("type") == STOP_CONDITION and c.get("status") == "True"),
        None,
    )
    stopped_by_kueue = (
        f"{stopped.get('reason') or 'stopped'}: {stopped.get('message') or ''}".rstrip(": ")
        if stopped
        else ""
    )
    evicted = (
        status.get("reason") in ("Evicted", "Preempting")
        or any(
            c.get("type") == DISRUPTION_CONDITION and c.get("status") == "True" for c in conditions
        )
        or bool(stopped)
    )
    reason, message = _not_started(status)
    index = labels.get(LABEL_INDEX, "")
    attempt = labels.get(LABEL_ATTEMPT, "")
    return PodView(
        name=meta["name"],
        index=int(index) if index.isdigit() else -1,
        attempt=int(attempt) if attempt.isdigit() else -1,
        phase=status.get("phase") or "Pending",
        deleting=bool(meta.get("deletionTimestamp")),
        deletion_time=parse_time(meta.get("deletionTimestamp")),
        created=parse_time(meta.get("creationTimestamp")),
        node_name=spec.get("nodeName") or "",
        exit_code=terminated.get("exitCode"),
        finished=parse_time(terminated.get("finishedAt")),
        termination_reason=terminated.get("reason") or "",
        evicted=evicted,
        stopped_by_kueue=stopped_by_kueue,
        not_started_reason=reason,
        not_started_message=message,
        gates=tuple(g.get("name", "") for g in spec.get("schedulingGates") or []),
        source=pod,
    )


def first_cause(failed: list[PodView]) -> PodView:
    """Of pods that failed together, the one that most likely brought the others down: the first
    to end, and within the same second (the API's resolution) one killed by a signal or for
    memory before one that crashed, as a survivor does when its collective loses a peer."""
    never = datetime.max.replace(tzinfo=UTC)
    return min(failed, key=lambda p: (p.finished or never, not p.killed, p.index))


def newest_warning(events: list[dict[str, Any]]) -> str:
    """The newest of a pod's Warning Events as "Reason: message" ("" when there is none)."""

    def when(event: dict[str, Any]) -> str:
        meta = event.get("metadata") or {}
        return (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or meta.get("creationTimestamp")
            or ""
        )

    if not events:
        return ""
    newest = max(events, key=when)
    return f"{newest.get('reason') or 'Warning'}: {(newest.get('message') or '').strip()}"
