"""status.progress from a chief's /metrics page, and which pods may be dialled at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from densenet_operator.progress import Sample, chief_endpoint, fallback_event, parse, progress
from tests.operator.jobs import JobBuilder

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)

PAGE = """# HELP densenet_global_step Training steps done
# TYPE densenet_global_step gauge
densenet_global_step{job_name="j",job_namespace="ns",rank="0"} 300.0
# TYPE densenet_max_steps gauge
densenet_max_steps{job_name="j",job_namespace="ns",rank="0"} 1200.0
# TYPE densenet_epoch gauge
densenet_epoch{job_name="j",job_namespace="ns",rank="0"} 2.5
# TYPE densenet_images_per_second gauge
densenet_images_per_second{job_name="j",job_namespace="ns",rank="0"} 1480.25
# TYPE densenet_loss gauge
densenet_loss{job_name="j",job_namespace="ns",rank="0"} 2.125
# TYPE densenet_total_loss gauge
densenet_total_loss{job_name="j",job_namespace="ns",rank="0"} 2.5
# TYPE densenet_learning_rate gauge
densenet_learning_rate{job_name="j",job_namespace="ns",rank="0"} 0.05
# TYPE densenet_images_processed counter
densenet_images_processed_total{job_name="j",job_namespace="ns",rank="0"} 9600.0
"""


def test_progress_from_the_chiefs_page_with_an_eta_from_the_step_rate():
    values = parse(PAGE)
    first = progress(values, {}, None, NOW)
    assert first == {
        "step": 300,
        "totalSteps": 1200,
        "epoch": 2.5,
        "imagesPerSecond": 1480.25,
        "loss": 2.125,
        "totalLoss": 2.5,
        "lr": 0.05,
        "percent": 25.0,
        "updated": "2026-11-24T12:00:00Z",
    }
    # 100 steps in 20 s: the remaining 900 take 180 s.
    later = progress(values, {}, Sample(200, NOW - timedelta(seconds=20)), NOW)
    assert later["estimatedRemainingSeconds"] == 180


def test_without_the_trainers_target_the_specs_max_steps_is_used():
    values = {"densenet_global_step": 50.0}
    out = progress(values, {"training": {"maxSteps": 200}}, None, NOW)
    assert (out["totalSteps"], out["percent"]) == (200, 25.0)
    assert "percent" not in progress(values, {}, None, NOW)


def pod(index: int, node: str, attempt: int = 0, phase: str = "Running") -> dict:
    return {
        "metadata": {
            "labels": {
                "densenet.dev/replica-index": str(index),
                "densenet.dev/attempt": str(attempt),
            }
        },
        "spec": {"nodeName": node},
        "status": {"phase": phase, "podIP": f"10.89.0.{10 + index}"},
    }


NODES = {
    "realnode-0": {"densenet.dev/real-node": "true"},
    "kwok-cpu-0": {"densenet.dev/fake-node": "true"},
}
NO_SCRAPE = {"densenet.dev/fake-node": "true"}


def test_only_the_running_chief_of_the_current_attempt_on_a_real_node_is_dialled():
    job = JobBuilder("j").replicas(2).defaulted()
    status = {"attempt": 1}
    pods = [
        pod(1, "realnode-0", attempt=1),
        pod(0, "realnode-0", attempt=0),
        pod(0, "realnode-0", attempt=1),
    ]
    assert (
        chief_endpoint(job, status, pods, NODES.get, NO_SCRAPE) == "http://10.89.0.10:9410/metrics"
    )
    assert (
        chief_endpoint(job, status, [pod(0, "kwok-cpu-0", attempt=1)], NODES.get, NO_SCRAPE) is None
    )
    assert (
        chief_endpoint(job, status, [pod(0, "unknown-node", attempt=1)], NODES.get, NO_SCRAPE)
        is None
    )
    pending = pod(0, "realnode-0", attempt=1, phase="Pending")
    assert chief_endpoint(job, status, [pending], NODES.get, NO_SCRAPE) is None
    off = JobBuilder("j").set("spec.metrics.enabled", False).defaulted()
    assert chief_endpoint(off, status, pods, NODES.get, NO_SCRAPE) is None


def test_a_checkpoint_fallback_reaches_the_status_and_gives_one_event():
    page = PAGE + (
        "# TYPE densenet_checkpoint_fallbacks counter\n"
        'densenet_checkpoint_fallbacks_total{job_name="j",job_namespace="ns",rank="0"} 1.0\n'
    )
    spec = JobBuilder("j").build()["spec"]
    new = progress(parse(page), spec, None, NOW)
    assert new["checkpointFallbacks"] == 1 and isinstance(new["checkpointFallbacks"], int)
    assert fallback_event({}, new) is not None
    assert fallback_event({"checkpointFallbacks": 1}, new) is None  # already reported
    assert fallback_event({}, progress(parse(PAGE), spec, None, NOW)) is None
