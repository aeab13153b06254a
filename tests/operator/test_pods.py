"""What kopf's index keeps of a pod (pods.indexed) is everything the operator reads."""

from __future__ import annotations

import dataclasses
import json

from densenet_operator import progress
from densenet_operator.pods import indexed, view
from densenet_operator.render import render
from densenet_operator.render.ranktable import ANNOTATION
from tests.operator.jobs import IMAGE, JobBuilder

JOB = JobBuilder("idx").accelerator("ascend", 8).replicas(2).defaulted()


def live_pod() -> dict:
    """A rendered Ascend pod as the API returns it after a crash: bound, annotated by the
    device plugin, terminated, being deleted, with managedFields."""
    pod = render(JOB, IMAGE).pods[0]
    pod["metadata"].update(
        uid="u-1",
        creationTimestamp="2026-12-01T10:00:00Z",
        deletionTimestamp="2026-12-01T10:05:00Z",
        finalizers=["example.com/hold"],
        ownerReferences=[{"uid": "job-uid", "controller": True, "kind": "DenseNetTrainingJob"}],
        managedFields=[{"manager": "kubelet", "fieldsV1": {"f:status": {"x": {}}}}] * 20,
    )
    pod["metadata"]["annotations"][ANNOTATION] = json.dumps({"pod_name": "1"})
    pod["spec"]["nodeName"] = "node-a"
    pod["status"] = {
        "phase": "Running",
        "reason": "Evicted",
        "podIP": "10.89.0.7",
        "hostIP": "10.89.0.1",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "trainer", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
        ],
    }
    return pod


def test_the_index_keeps_every_field_the_operator_reads_and_little_else():
    pod = live_pod()
    slim = indexed(pod)
    assert dataclasses.replace(view(slim), source=None) == dataclasses.replace(
        view(pod), source=None
    )
    assert slim["metadata"]["annotations"][ANNOTATION] == pod["metadata"]["annotations"][ANNOTATION]
    assert slim["metadata"]["finalizers"] == ["example.com/hold"]
    job = JOB
    url = progress.chief_endpoint(job, {"attempt": 0}, [slim], lambda node: {}, {})
    assert url == progress.chief_endpoint(job, {"attempt": 0}, [pod], lambda node: {}, {})
    assert url and "10.89.0.7" in url
    assert len(json.dumps(slim)) * 4 < len(json.dumps(pod))
