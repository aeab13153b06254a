"""Kueue's plain-pod group, as its docs define it (tasks/run/plain_pods.md), and what the
operator reads of the group's Workload. Pure.

A job with ``scheduling.gang.provider: kueue`` labels every pod with the LocalQueue and the
group (the job's name) and annotates the group's size; Kueue's webhook adds the admission
gate, which Kueue lifts once the whole group fits the ClusterQueue's quota. Kueue names the
group's Workload after the group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
COUNT_ANNOTATION = "kueue.x-k8s.io/pod-group-total-count"
ADMISSION_GATE = "kueue.x-k8s.io/admission"
# On a pod of the group, "false" ends the group: Kueue finishes its Workload, releases the
# quota and the pods' finalizers, instead of waiting for replacement pods.
RETRIABLE_ANNOTATION = "kueue.x-k8s.io/retriable-in-group"
# The pod condition Kueue sets on each pod of a group it stops (preempted, evicted) before it
# deletes them; its reason and message say why and, for a preemption, for which workload.
STOP_CONDITION = "TerminationTarget"

API_GROUP = "kueue.x-k8s.io"
API_VERSION = "v1beta2"
WORKLOADS = "workloads"


def group_name(job: str, attempt: int) -> str:
    """The pod group of one attempt of a job (and so its Workload's name). Each attempt is a
    group of its own: Kueue holds the pods of a group (its finalizer) until replacements join
    it, while the operator replaces a pod only once the old one, which has the same name, is
    gone; so an attempt's group is ended when the attempt ends, and the next attempt queues
    anew. A job name has at most 52 characters: the label value stays within 63."""
    return f"{job}-{attempt}"


def workload_path(namespace: str, group: str) -> str:
    return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{WORKLOADS}/{group}"


def waiting_reason(workload: Mapping[str, Any] | None) -> str:
    """Why Kueue has not admitted the group: its Workload's QuotaReserved condition while it
    is False (``couldn't assign flavors to pod set ...: insufficient unused quota ...``), or
    '' when Kueue has said nothing yet (no Workload, no condition)."""
    if not workload:
        return ""
    for condition in (workload.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "QuotaReserved" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "")
    return ""


def uses_kueue(spec: Mapping[str, Any]) -> bool:
    """Whether a job's (defaulted) spec puts its pods in a Kueue pod group."""
    gang = spec["scheduling"]["gang"]
    return bool(gang["enabled"]) and gang["provider"] == "kueue"


def not_yet_ended(pods: list[Mapping[str, Any]]) -> list[str]:
    """Names of the group's pods (as the API returns them) not yet marked as ending it."""
    names = []
    for pod in pods:
        meta = pod["metadata"]
        if GROUP_LABEL not in (meta.get("labels") or {}):
            continue
        if (meta.get("annotations") or {}).get(RETRIABLE_ANNOTATION) != "false":
            names.append(meta["name"])
    return names
