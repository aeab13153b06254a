"""Pod status the way a kubelet writes it (phase rules from pkg/kubelet/kubelet_pods.go getPhase).
Pure: the pod worker keeps a ContainerRecord per container and hands them in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class ContainerRecord:
    name: str
    image: str
    restart_count: int = 0
    running_since: str | None = None
    terminated: dict | None = None  # {exitCode, reason, startedAt, finishedAt}: current state
    last_terminated: dict | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    container_id: str = ""
    probe_ready: bool = True  # the readiness probe's verdict while running

    def state(self) -> dict:
        if self.running_since:
            return {"running": {"startedAt": self.running_since}}
        if self.terminated:
            return {"terminated": dict(self.terminated)}
        waiting = {"reason": self.waiting_reason}
        if self.waiting_message:
            waiting["message"] = self.waiting_message
        return {"waiting": waiting}

    def to_status(self, *, init: bool = False) -> dict:
        ready = (
            bool(self.terminated and self.terminated["exitCode"] == 0)
            if init
            else bool(self.running_since) and self.probe_ready
        )
        status = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": ready,
            "started": bool(self.running_since),
            "restartCount": self.restart_count,
            "state": self.state(),
            "lastState": {"terminated": dict(self.last_terminated)} if self.last_terminated else {},
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def terminated(exit_code: int, started_at: str, finished_at: str, signal: int = 0) -> dict:
    state = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": started_at,
        "finishedAt": finished_at,
    }
    if signal:
        state["signal"] = signal
    return state


def pod_phase(
    restart_policy: str,
    init_pending: bool,
    init_failed: bool,
    containers: Sequence[ContainerRecord],
) -> str:
    if init_failed or init_pending:
        return "Failed" if init_failed else "Pending"
    waiting = running = stopped = succeeded = 0
    for c in containers:
        if c.running_since:
            running += 1
        elif c.terminated:
            stopped += 1
            succeeded += c.terminated["exitCode"] == 0
        elif c.last_terminated:
            stopped += 1
        else:
            waiting += 1
    if waiting or not (running or stopped):
        return "Pending"
    if running or restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def conditions(
    previous: Sequence[dict],
    now: str,
    *,
    sandbox_ready: bool,
    initialized: bool,
    containers_ready: bool,
    terminal: bool,
) -> list[dict]:
    """Pod conditions; lastTransitionTime moves only when a condition's status changes."""
    before = {c["type"]: c for c in previous}
    wanted = [
        ("PodReadyToStartContainers", sandbox_ready and not terminal, ""),
        ("Initialized", initialized, "" if initialized else "ContainersNotInitialized"),
        ("Ready", containers_ready, "" if containers_ready else "ContainersNotReady"),
        ("ContainersReady", containers_ready, "" if containers_ready else "ContainersNotReady"),
        ("PodScheduled", True, ""),
    ]
    result = []
    for kind, ok, why in wanted:
        status = "True" if ok else "False"
        reason = "PodCompleted" if terminal and kind in ("Ready", "ContainersReady") else why
        old = before.get(kind)
        changed = old is None or old.get("status") != status
        cond = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),
        }
        if reason and not ok:
            cond["reason"] = reason
        result.append(cond)
    return result


def pod_status(
    *,
    phase: str,
    conditions: list[dict],
    pod_ip: str | None,
    host_ip: str,
    start_time: str,
    init_containers: Sequence[ContainerRecord],
    containers: Sequence[ContainerRecord],
) -> dict:
    status: dict = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [c.to_status() for c in containers],
    }
    if init_containers:
        status["initContainerStatuses"] = [c.to_status(init=True) for c in init_containers]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
