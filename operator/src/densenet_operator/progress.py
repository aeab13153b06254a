"""Live progress: read the chief trainer's own /metrics and turn it into ``status.progress``.

Runs on its own thread, never in a reconcile. A pod on a node that matches the no-scrape
selector (the local cluster's fake kwok nodes, whose pod IPs lead nowhere) is never dialled;
failures to read only leave ``updated`` older.
"""

from __future__ import annotations

import math
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from densenet_contract import metrics, ports

from .job import LABEL_ATTEMPT, LABEL_INDEX, Job
from .lifecycle import timestamp
from .pods import parse_time

# What one read of a chief's /metrics may cost: the trainer's page is a few KiB, so a page
# past MAX_BYTES or a read past READ_DEADLINE (a slow or hostile endpoint dripping bytes) is a
# failed read, never a stalled or bloated operator. Jobs are read concurrently, READERS at most.
READ_TIMEOUT = 3.0
READ_DEADLINE = 5.0
MAX_BYTES = 256 * 1024
READERS = 8

# Trainer metric (densenet_contract.metrics) -> status.progress field.
GAUGES = {
    metrics.GLOBAL_STEP: "step",
    metrics.EPOCH: "epoch",
    metrics.IMAGES_PER_SECOND: "imagesPerSecond",
    metrics.LOSS: "loss",
    metrics.TOTAL_LOSS: "totalLoss",
    metrics.LEARNING_RATE: "lr",
    metrics.EVAL_TOP1: "evalTop1",
    metrics.MAX_STEPS: "totalSteps",
    metrics.RESUMED_STEP: "resumedStep",
    metrics.CHECKPOINT_STEP: "checkpointStep",
}
# Trainer gauges of Unix times -> status.progress timestamps.
TIMES = {metrics.CHECKPOINT_TIME: "checkpointTime"}
# Whole-number fields.
INTEGERS = ("step", "resumedStep", "checkpointStep")


# Trainer counter -> status.progress field (the sample's name carries the _total suffix).
COUNTERS = {f"{metrics.CHECKPOINT_FALLBACKS}_total": "checkpointFallbacks"}


# Every trainer sample the operator reads.
READ = {*TIMES, metrics.FIRST_STEP_TIME}


def parse(text: str) -> dict[str, float]:
    """The first sample of each trainer gauge and counter in a /metrics page."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            known = sample.name in GAUGES or sample.name in COUNTERS or sample.name in READ
            if known and sample.name not in values:
                values[sample.name] = sample.value
    return values


def fallback_event(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The message of a CheckpointFallback Event when the chief fell back to an older
    checkpoint since the last read, else None."""
    before, after = old.get("checkpointFallbacks", 0), new.get("checkpointFallbacks", 0)
    if after <= before:
        return None
    return (
        "the latest checkpoint was unreadable: the chief resumed from an older one "
        "(its log says which: look for 'falling back to')"
    )


def step_time(old: dict[str, Any], new: dict[str, Any], now: datetime) -> str | None:
    """``status.progress.stepTime``: when the step of ``new`` was first read, so the time
    the job last moved (the stall check's clock); None before the first step."""
    if "step" not in new:
        return old.get("stepTime")
    if new["step"] == old.get("step") and old.get("stepTime"):
        return str(old["stepTime"])
    return timestamp(now)


# The goodput fields a restart leaves open until the first new step (lifecycle.restart).
PENDING = ("restartedAt", "stepAtRestart")


def recovered(
    goodput: dict[str, Any], values: dict[str, float], new: dict[str, Any]
) -> tuple[dict[str, Any], float, int] | None:
    """Close the record a restart opened in ``status.goodput`` once the new attempt's chief
    has made a step: its first step's time (the trainer's gauge) minus the restart's is the
    recovery; the step reached before the restart minus the step resumed from, the steps
    lost. Returns (goodput, seconds, steps lost), or None while there is nothing to close."""
    since = parse_time(goodput.get("restartedAt"))
    first = values.get(metrics.FIRST_STEP_TIME)
    if since is None or first is None or "resumedStep" not in new:
        return None
    first_step = datetime.fromtimestamp(first, UTC)
    if first_step < since:
        return None  # a process of the attempt before the restart
    seconds = (first_step - since).total_seconds()
    before = goodput.get("stepAtRestart")
    lost = max(0, int(before) - new["resumedStep"]) if before is not None else 0
    out = {k: v for k, v in goodput.items() if k not in PENDING}
    out["recoveries"] = int(out.get("recoveries", 0)) + 1
    out["stepsLost"] = int(out.get("stepsLost", 0)) + lost
    out["secondsLost"] = round(float(out.get("secondsLost", 0.0)) + seconds, 3)
    out["lastRecoverySeconds"] = round(seconds, 3)
    return out, seconds, lost


@dataclass(frozen=True)
class Sample:
    step: float
    at: datetime


def progress(
    values: dict[str, float], spec: dict[str, Any], previous: Sample | None, now: datetime
) -> dict[str, Any]:
    """``status.progress`` from the chief's gauges; the step rate between two reads gives the
    estimated time left."""
    out: dict[str, Any] = {}
    for metric, field in {**GAUGES, **COUNTERS}.items():
        value = values.get(metric)
        if value is not None and math.isfinite(value):
            out[field] = round(value, 6)
    for field in (*INTEGERS, *COUNTERS.values()):
        if field in out:
            out[field] = int(out[field])
    for metric, field in TIMES.items():
        seconds = values.get(metric)
        if seconds is not None and math.isfinite(seconds) and seconds > 0:
            out[field] = timestamp(datetime.fromtimestamp(seconds, UTC))
    total = out.get("totalSteps") or (spec.get("training") or {}).get("maxSteps")
    if total:
        out["totalSteps"] = int(total)
        step = out.get("step", 0)
        out["percent"] = round(min(100.0, 100.0 * step / total), 1)
        if previous is not None and "step" in out:
            seconds = (now - previous.at).total_seconds()
            rate = (step - previous.step) / seconds if seconds > 0 else 0.0
            if rate > 0:
                out["estimatedRemainingSeconds"] = int((total - step) / rate)
    out["updated"] = timestamp(now)
    return out


def chief_endpoint(
    job: Job,
    status: dict[str, Any],
    pods: list[dict[str, Any]],
    node_labels,
    no_scrape: dict[str, str],
) -> str | None:
    """URL of the chief's /metrics, or None when it must not or cannot be read."""
    port = job.metrics_port
    if port is None:
        return None
    attempt = str(status.get("attempt", 0))
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if labels.get(LABEL_INDEX) != "0" or labels.get(LABEL_ATTEMPT) != attempt:
            continue
        node = (pod.get("spec") or {}).get("nodeName")
        ip = (pod.get("status") or {}).get("podIP")
        if not node or not ip or (pod.get("status") or {}).get("phase") != "Running":
            return None
        if no_scrape:
            labels_of_node = node_labels(node)
            if labels_of_node is None:
                return None  # unknown node: never dial what might be a fake pod
            if all(labels_of_node.get(k) == v for k, v in no_scrape.items()):
                return None
        return f"http://{ip}:{port}{ports.METRICS_PATH}"
    return None


# No proxy, whatever the environment says: a pod IP is dialled directly or not at all.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, max_bytes: int = MAX_BYTES, deadline: float = READ_DEADLINE) -> str | None:
    """The page at ``url``, or None when it cannot be read within ``deadline`` seconds in all
    or is larger than ``max_bytes``."""
    started = time.monotonic()
    chunks: list[bytes] = []
    size = 0
    try:
        with _OPENER.open(url, timeout=READ_TIMEOUT) as response:
            while chunk := response.read1(16 * 1024):
                size += len(chunk)
                if size > max_bytes or time.monotonic() - started > deadline:
                    return None
                chunks.append(chunk)
    except (OSError, ValueError):
        return None
    return b"".join(chunks).decode("utf-8", "replace")
