"""The reconcile decision, table by table: exit codes, restarts, run policy, phases. Pure:
jobs and pods as the API returns them, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from densenet_operator import schema
from densenet_operator.lifecycle import creation_refused, decide, silent_pending, stuck_nodes
from densenet_operator.pods import newest_warning, view
from densenet_operator.settings import Settings
from tests.operator.jobs import JobBuilder, ascend_annotation

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings(backoff_base=10, backoff_max=300, pending_timeout=60, force_delete_after=60)


def stored(builder: JobBuilder, **status) -> dict:
    obj = schema.apply(builder.build())
    obj["metadata"].update(namespace="ns1", uid="u1", generation=1)
    obj["status"] = {
        "phase": "Running",
        "attempt": 0,
        "launchedAttempt": 0,
        "restarts": 0,
        "startTime": "2026-11-24T11:00:00Z",
        **status,
    }
    return obj


def pod(index, attempt=0, phase="Running", exit_code=None, job="dn", **extra) -> dict:
    status = {"phase": phase, "podIP": f"10.89.0.{10 + index}"}
    if exit_code is not None:
        status["containerStatuses"] = [
            {"name": "trainer", "state": {"terminated": {"exitCode": exit_code, "reason": "Error"}}}
        ]
    status.update(extra.pop("status", {}))
    meta = {
        "name": f"{job}-worker-{index}",
        "labels": {
            "densenet.dev/job-name": job,
            "densenet.dev/replica-index": str(index),
            "densenet.dev/attempt": str(attempt),
        },
        "creationTimestamp": "2026-11-24T11:59:00Z",
        **extra.pop("meta", {}),
    }
    return {"metadata": meta, "spec": {"nodeName": "realnode-0"}, "status": status}


def run(obj, pods, now=NOW):
    return decide(obj, [view(p) for p in pods], now, SETTINGS)


def two_workers(**spec) -> JobBuilder:
    builder = JobBuilder("dn").replicas(2)
    for path, value in spec.items():
        builder.set(path.replace("__", "."), value)
    return builder


def test_a_new_job_creates_every_pod_and_says_so():
    obj = schema.apply(two_workers().build())
    obj["metadata"].update(namespace="ns1", uid="u1", generation=1)
    plan = run(obj, [])
    assert plan.create == [0, 1]
    assert plan.status["phase"] == "Pending"
    assert plan.status["accelerator"] == "cpu x1"
    assert "launchedAttempt" not in plan.status  # launched once every pod exists
    assert plan.counters == ["created"]
    assert [e.reason for e in plan.events] == ["Created"]


def test_running_pods_make_a_running_job_and_nothing_is_created_twice():
    plan = run(stored(two_workers(), phase="Initializing"), [pod(0), pod(1)])
    assert plan.create == []
    assert plan.delete == []
    assert plan.status["phase"] == "Running"
    assert plan.status["replicas"] == {"active": 2, "succeeded": 0, "failed": 0}


def test_every_worker_exiting_0_succeeds_the_job_and_cleans_nothing_that_ended():
    plan = run(
        stored(two_workers()),
        [pod(0, phase="Succeeded", exit_code=0), pod(1, phase="Succeeded", exit_code=0)],
    )
    assert plan.status["phase"] == "Succeeded"
    assert plan.status["completionTime"] == "2026-11-24T12:00:00Z"
    assert plan.delete == []
    assert plan.counters == ["succeeded"]


@pytest.mark.parametrize(
    ("code", "reason", "meaning"),
    [
        (2, "UsageError", "bad or conflicting flags"),
        (3, "DataError", "bad data"),
        (4, "Diverged", "loss diverged to NaN/inf"),
        (5, "MissingDevice", "accelerator or vendor package missing"),
    ],
)
def test_exit_codes_that_no_retry_can_fix_fail_the_job_at_once(code, reason, meaning):
    plan = run(stored(two_workers()), [pod(0), pod(1, phase="Failed", exit_code=code)])
    assert plan.status["phase"] == "Failed"
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == reason
    assert failed["message"] == (
        f"{reason}: dn-worker-1 exited {code} ({meaning}); see kubectl logs -n ns1 dn-worker-1"
    )
    assert plan.delete == ["dn-worker-0"]  # cleanPodPolicy Running: the other worker stops
    assert "restarts" not in plan.status or plan.status["restarts"] == 0


@pytest.mark.parametrize(
    ("code", "cause"),
    [(1, "dn-worker-1 exited 1 (crash)"), (137, "dn-worker-1 was killed by signal 9 (exit 137)")],
)
def test_crashes_restart_the_whole_job_with_backoff_counted(code, cause):
    plan = run(stored(two_workers(), restarts=1), [pod(0), pod(1, phase="Failed", exit_code=code)])
    assert plan.status["phase"] == "Restarting"
    assert plan.status["attempt"] == 1
    assert plan.status["restarts"] == 2
    assert plan.status["nextAttemptTime"] == "2026-11-24T12:00:20Z"  # 10 s * 2^(2-1)
    # The survivor waits in a collective for the dead peer: no grace period to wait out.
    assert sorted(plan.quick_delete) == ["dn-worker-0", "dn-worker-1"] and plan.delete == []
    assert plan.create == []
    restarting = next(c for c in plan.status["conditions"] if c["type"] == "Restarting")
    assert cause in restarting["message"]
    assert plan.requeue_after == 20


def ended(index: int, code: int, finished: str) -> dict:
    terminated = {"exitCode": code, "reason": "Error", "finishedAt": finished}
    status = {"containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]}
    return pod(index, phase="Failed", status=status)


@pytest.mark.parametrize(
    ("worker_0_end", "cause"),
    [
        # A real kubelet reports both in one pass: worker-1 was SIGKILLed and worker-0 crashed
        # when its collective lost the peer, within the same second.
        ("2026-11-24T11:59:30Z", "dn-worker-1 was killed by signal 9 (exit 137)"),
        # worker-0 crashed a second before: it came first, whatever worker-1's end says.
        ("2026-11-24T11:59:29Z", "dn-worker-0 exited 1 (crash)"),
    ],
)
def test_the_restart_names_the_failure_that_came_first(worker_0_end, cause):
    pods = [ended(0, 1, worker_0_end), ended(1, 137, "2026-11-24T11:59:30Z")]
    plan = run(stored(two_workers()), pods)
    restarting = next(c for c in plan.status["conditions"] if c["type"] == "Restarting")
    assert f"from its last checkpoint: {cause};" in restarting["message"], restarting["message"]


def test_a_pod_silent_about_why_it_is_pending_is_reported_with_its_warning_event():
    """A kubelet that cannot mount a volume leaves the pod ContainerCreating with no message
    in its status; the Warning Event it posts is what PodsNotStarting says."""
    creating = {"containerStatuses": [
        {"name": "trainer", "state": {"waiting": {"reason": "ContainerCreating"}}}
    ]}  # fmt: skip
    pods = [view(pod(0, phase="Pending", status=creating))]
    late = NOW  # the pod was created 60 s before: the pending timeout
    assert silent_pending(pods, NOW - timedelta(seconds=30), SETTINGS) == []  # not yet
    assert silent_pending(pods, late, SETTINGS) == ["dn-worker-0"]
    warning = newest_warning([
        {"reason": "FailedMount", "message": "old", "lastTimestamp": "2026-11-24T12:00:01Z"},
        {"reason": "FailedMount", "message": 'configmap "cm" not found ',
         "lastTimestamp": "2026-11-24T12:00:09Z"},
    ])  # fmt: skip
    assert warning == 'FailedMount: configmap "cm" not found'
    obj = stored(JobBuilder("dn").replicas(1))
    plan = decide(obj, pods, late, SETTINGS, pod_warnings={"dn-worker-0": warning})
    condition = next(c for c in plan.status["conditions"] if c["type"] == "PodsNotStarting")
    assert condition["message"] == f"dn-worker-0: ContainerCreating: {warning}"


def test_preemption_restarts_at_once_without_counting():
    plan = run(stored(two_workers(), restarts=3), [pod(0), pod(1, phase="Failed", exit_code=75)])
    assert plan.status["phase"] == "Restarting"
    assert plan.status["restarts"] == 3
    assert plan.status["preemptions"] == 1
    assert plan.status["nextAttemptTime"] == "2026-11-24T12:00:00Z"
    # Every rank stops at the same step and checkpoints: the full grace period.
    assert sorted(plan.delete) == ["dn-worker-0", "dn-worker-1"] and plan.quick_delete == []


def test_evicted_pod_is_a_disruption():
    evicted = pod(1, phase="Failed", status={"reason": "Evicted"})
    plan = run(stored(two_workers(), restarts=3), [pod(0), evicted])
    assert plan.status["restarts"] == 3
    assert plan.status["preemptions"] == 1


def test_past_backoff_limit_the_job_fails_with_the_last_cause():
    obj = stored(two_workers(spec__runPolicy__backoffLimit=2), restarts=2)
    plan = run(obj, [pod(0), pod(1, phase="Failed", exit_code=1)])
    assert plan.status["phase"] == "Failed"
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "last cause: dn-worker-1 exited 1 (crash)" in failed["message"]


def test_a_pod_that_disappears_restarts_the_job_without_counting():
    plan = run(stored(two_workers()), [pod(0)])
    assert plan.status["phase"] == "Restarting"
    assert plan.status["preemptions"] == 1
    assert "dn-worker-1 disappeared" in plan.status["conditions"][-1]["message"]


def test_a_deleted_pod_still_terminating_counts_as_gone():
    deleting = pod(1, meta={"deletionTimestamp": "2026-11-24T11:59:59Z"})
    plan = run(stored(two_workers()), [pod(0), deleting])
    assert plan.status["phase"] == "Restarting"
    assert plan.delete == ["dn-worker-0"]


def test_a_pod_deleted_before_the_launch_was_recorded_still_restarts_the_job():
    """Every pod of the attempt existed, but the pass that records the launch had not run yet
    when one was deleted (seen in CI under load): it was lost all the same, never recreated
    alone into an attempt whose other workers have started without it."""
    obj = stored(two_workers())
    del obj["status"]["launchedAttempt"]
    deleting = pod(1, meta={"deletionTimestamp": "2026-11-24T11:59:59Z"})
    plan = run(obj, [pod(0), deleting])
    assert plan.status["phase"] == "Restarting"
    assert plan.status["preemptions"] == 1 and plan.status["attempt"] == 1
    assert "dn-worker-1 disappeared" in plan.status["conditions"][-1]["message"]


def test_next_attempt_waits_for_backoff_then_for_old_pods_to_go():
    restarting = stored(
        two_workers(), phase="Restarting", attempt=1, nextAttemptTime="2026-11-24T12:00:30Z"
    )
    old = pod(0, attempt=0, meta={"deletionTimestamp": "2026-11-24T11:59:59Z"})
    plan = run(restarting, [old])
    assert plan.create == []
    assert plan.requeue_after == 30
    later = NOW + timedelta(seconds=31)
    assert run(restarting, [old], later).create == []  # dn-worker-0 still terminating
    plan = run(restarting, [], later)
    assert plan.create == [0, 1]
    assert plan.status["launchedAttempt"] == 0  # not yet: the new pods do not exist yet
    plan = run(restarting, [pod(0, attempt=1), pod(1, attempt=1)], later)
    assert plan.status["launchedAttempt"] == 1


def test_an_attempt_is_launched_only_once_all_its_pods_exist():
    """A quota that admits 3 pods of 4: the attempt is not launched, so the missing pod is
    created again (after the backoff), never read as lost (no restart, no preemption)."""
    obj = stored(two_workers(spec__replicas=4), phase="Pending")
    del obj["status"]["launchedAttempt"]
    plan = run(obj, [pod(0), pod(1), pod(2)])
    assert plan.create == [3]
    assert plan.status.get("preemptions", 0) == 0 and plan.status["attempt"] == 0
    assert "launchedAttempt" not in plan.status


def test_a_refused_creation_backs_off_and_clears_once_created():
    obj = stored(two_workers(), phase="Pending")
    del obj["status"]["launchedAttempt"]
    status = obj["status"]
    message = 'pods "dn-worker-1" is forbidden: exceeded quota: three-pods'
    delays = [creation_refused(status, message, NOW, SETTINGS)[0] for _ in range(6)]
    assert delays == [10, 20, 40, 80, 160, 300]
    refused = next(c for c in status["conditions"] if c["type"] == "ReplicaFailure")
    assert refused["status"] == "True" and "exceeded quota: three-pods" in refused["message"]
    assert run(obj, [pod(0)]).create == []  # inside the backoff
    later = NOW + timedelta(seconds=301)
    assert run(obj, [pod(0)], later).create == [1]
    plan = run(obj, [pod(0), pod(1)], later)
    assert "createFailures" not in plan.status
    cleared = next(c for c in plan.status["conditions"] if c["type"] == "ReplicaFailure")
    assert cleared["status"] == "False" and cleared["reason"] == "Created"


def test_a_pod_stuck_terminating_is_force_deleted_only_when_its_node_is_not_ready():
    restarting = stored(two_workers(), phase="Restarting", attempt=1)
    stuck = pod(0, attempt=0, meta={"deletionTimestamp": "2026-11-24T11:58:00Z"})
    assert stuck_nodes([view(stuck)], NOW, SETTINGS) == {"realnode-0"}
    for ready in (False, None):  # NotReady, or the node is gone
        plan = decide(restarting, [view(stuck)], NOW, SETTINGS, {"realnode-0": ready})
        assert plan.force_delete == ["dn-worker-0"]
    plan = decide(restarting, [view(stuck)], NOW, SETTINGS, {"realnode-0": True})
    assert plan.force_delete == []
    waiting = next(c for c in plan.status["conditions"] if c["type"] == "PodsNotTerminating")
    assert "dn-worker-0" in waiting["message"] and "realnode-0" in waiting["message"]
    held = pod(
        0, attempt=0, meta={"deletionTimestamp": "2026-11-24T11:58:00Z", "finalizers": ["x/hold"]}
    )
    plan = decide(restarting, [view(held)], NOW, SETTINGS, {"realnode-0": True})
    assert "held by finalizers x/hold" in plan.status["conditions"][-1]["message"]
    assert plan.requeue_after is None  # no retry loop: the pod's deletion event wakes the job
    assert stuck_nodes([view(stuck)], NOW - timedelta(seconds=90), SETTINGS) == set()


def test_the_largest_deadline_and_ttl_the_api_accepts_do_not_overflow():
    huge = 3153600000  # the CRD's maximum for both
    obj = stored(two_workers(spec__runPolicy__activeDeadlineSeconds=huge))
    assert run(obj, [pod(0), pod(1)]).status["phase"] == "Running"
    done = stored(
        two_workers(spec__runPolicy__ttlSecondsAfterFinished=huge),
        phase="Succeeded",
        completionTime="2026-11-24T11:00:00Z",
    )
    assert run(done, []).delete_job is False


def test_deadline_fails_the_job_and_stops_its_pods():
    obj = stored(two_workers(spec__runPolicy__activeDeadlineSeconds=3600))
    plan = run(obj, [pod(0), pod(1)])
    assert plan.status["phase"] == "Failed"
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert sorted(plan.delete) == ["dn-worker-0", "dn-worker-1"]


def test_ttl_deletes_a_finished_job():
    obj = stored(
        two_workers(spec__runPolicy__ttlSecondsAfterFinished=60),
        phase="Succeeded",
        completionTime="2026-11-24T11:58:00Z",
    )
    assert run(obj, []).delete_job is True
    obj["status"]["completionTime"] = "2026-11-24T11:59:30Z"
    plan = run(obj, [])
    assert plan.delete_job is False
    assert plan.requeue_after == 30


@pytest.mark.parametrize(
    ("policy", "deleted"),
    [("None", []), ("Running", ["dn-worker-0"]), ("All", ["dn-worker-0", "dn-worker-1"])],
)
def test_clean_pod_policy(policy, deleted):
    obj = stored(two_workers(spec__runPolicy__cleanPodPolicy=policy), phase="Failed")
    plan = run(obj, [pod(0), pod(1, phase="Failed", exit_code=3)])
    assert sorted(plan.delete) == deleted


def test_suspend_deletes_pods_and_resume_starts_a_new_attempt():
    obj = stored(two_workers(spec__runPolicy__suspend=True))
    plan = run(obj, [pod(0), pod(1)])
    assert plan.status["phase"] == "Suspended"
    assert sorted(plan.delete) == ["dn-worker-0", "dn-worker-1"]
    assert plan.status["attempt"] == 1
    assert plan.status.get("restarts") == 0
    resumed = stored(two_workers(), phase="Suspended", attempt=1)
    plan = run(resumed, [])
    assert plan.status["phase"] == "Pending"
    assert plan.create == [0, 1]


def test_a_pod_that_never_starts_gets_a_condition_with_the_schedulers_message():
    unschedulable = pod(
        1,
        phase="Pending",
        status={
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/6 nodes are available: 6 Insufficient huawei.com/Ascend910.",
                }
            ]
        },
    )
    unschedulable["spec"] = {}
    plan = run(stored(two_workers()), [pod(0), unschedulable])
    condition = next(c for c in plan.status["conditions"] if c["type"] == "PodsNotStarting")
    assert condition["message"] == (
        "dn-worker-1: Unschedulable: 0/6 nodes are available: 6 Insufficient huawei.com/Ascend910."
    )
    assert plan.status["phase"] == "Pending"


def test_ascend_rank_table_completes_from_annotations_and_resets_on_restart():
    builder = two_workers().accelerator("ascend", 8)
    obj = stored(builder, phase="Initializing", rankTable={"state": "initializing"})
    annotated = [
        pod(
            i,
            meta={
                "annotations": {
                    "ascend.kubectl.kubernetes.io/ascend-910-configuration": ascend_annotation(
                        f"dn-worker-{i}", f"10.0.0.{i}", list(range(8))
                    )
                }
            },
        )
        for i in range(2)
    ]
    plan = run(obj, annotated)
    assert plan.status["rankTable"]["state"] == "completed"
    assert '"rank_id": "15"' in plan.rank_table
    assert plan.status["phase"] == "Running"
    obj["status"]["rankTable"] = plan.status["rankTable"]
    plan = run(obj, [annotated[0], pod(1, phase="Failed", exit_code=1)])
    assert plan.status["rankTable"]["state"] == "initializing"
    assert plan.rank_table == '{"status":"initializing"}'


def test_a_job_that_breaks_the_admin_policy_ends_failed_and_its_pods_go():
    obj = stored(two_workers())
    message = (
        "spec.template.volumes: volume root uses a volume type the cluster admin does not allow"
    )
    plan = decide(obj, [view(pod(0)), view(pod(1))], NOW, SETTINGS, violations=[message])
    assert plan.status["phase"] == "Failed"
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == ("PolicyViolation", message)
    assert sorted(plan.delete) == ["dn-worker-0", "dn-worker-1"]  # cleanPodPolicy Running
    done = stored(two_workers(), phase="Succeeded", completionTime="2026-11-24T11:30:00Z")
    assert decide(done, [], NOW, SETTINGS, violations=[message]).status["phase"] == "Succeeded"


def stalled(plan) -> dict | None:
    return next((c for c in plan.status.get("conditions", []) if c["type"] == "Stalled"), None)


AT = datetime(2026, 11, 24, 12, 11, 0, tzinfo=UTC)  # 12 min after the pods' creation


def test_a_running_job_with_no_step_for_the_deadline_is_stalled_once():
    obj = stored(two_workers())
    early = run(obj, [pod(0), pod(1)], now=NOW + timedelta(minutes=5))
    assert stalled(early) is None
    assert early.requeue_after == pytest.approx(240)  # due when the deadline passes (12:09)
    plan = run(obj, [pod(0), pod(1)], now=AT)
    condition = stalled(plan)
    assert (condition["status"], condition["reason"]) == ("True", "NoProgress")
    assert condition["message"] == (
        "no step since the workers started at 2026-11-24T11:59:00Z (progressDeadlineSeconds 600)"
    )
    assert plan.status["phase"] == "Running" and plan.delete == []
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "Stalled")]
    again = run(stored(two_workers(), **plan.status), [pod(0), pod(1)], now=AT)
    assert stalled(again)["status"] == "True" and again.events == []


def test_the_last_step_names_the_stall_and_a_new_step_clears_it():
    progress = {"step": 50, "stepTime": "2026-11-24T11:59:30Z"}
    plan = run(stored(two_workers(), progress=progress), [pod(0), pod(1)], now=AT)
    assert stalled(plan)["message"].startswith(
        "no new step since 2026-11-24T11:59:30Z: the last was 50"
    )
    moved = {"step": 60, "stepTime": "2026-11-24T12:10:50Z"}
    cleared = run(
        stored(two_workers(), **{**plan.status, "progress": moved}), [pod(0), pod(1)], now=AT
    )
    assert (stalled(cleared)["status"], stalled(cleared)["reason"]) == ("False", "Progressing")


def test_a_step_of_an_earlier_attempt_does_not_stall_the_new_pods():
    progress = {"step": 50, "stepTime": "2026-11-24T11:00:00Z"}  # before this attempt's pods
    plan = run(stored(two_workers(), progress=progress), [pod(0), pod(1)], now=NOW)
    assert stalled(plan) is None


def test_stalled_action_restart_restarts_the_whole_job_counted():
    job = two_workers(spec__runPolicy__stalledAction="Restart")
    plan = run(stored(job), [pod(0), pod(1)], now=AT)
    assert plan.status["phase"] == "Restarting"
    assert plan.status["restarts"] == 1 and plan.status["attempt"] == 1
    assert sorted(plan.quick_delete) == ["dn-worker-0", "dn-worker-1"]
    restarting = next(c for c in plan.status["conditions"] if c["type"] == "Restarting")
    assert "stalled: no step since the workers started" in restarting["message"]


def test_the_crd_defaults_report_only_after_ten_minutes():
    policy = schema.apply(two_workers().build())["spec"]["runPolicy"]
    assert (policy["progressDeadlineSeconds"], policy["stalledAction"]) == (600, "None")


def test_a_job_stored_under_the_previous_crd_gets_the_stall_defaults():
    obj = stored(two_workers())
    for field in ("progressDeadlineSeconds", "stalledAction"):
        del obj["spec"]["runPolicy"][field]  # Helm never upgrades a chart's crds/
    assert stalled(run(obj, [pod(0), pod(1)], now=AT))["status"] == "True"


def test_a_job_without_metrics_is_never_called_stalled():
    obj = stored(two_workers(spec__metrics__enabled=False))
    assert stalled(run(obj, [pod(0), pod(1)], now=AT)) is None


def test_a_restart_opens_a_goodput_record_and_a_second_one_extends_it():
    crashed = [pod(0), pod(1, phase="Failed", exit_code=1)]
    plan = run(stored(two_workers(), progress={"step": 57}), crashed)
    assert plan.status["goodput"] == {"restartedAt": "2026-11-24T12:00:00Z", "stepAtRestart": 57}
    # Crashed again before its first new step: one record, from the first restart.
    again = stored(two_workers(), **{**plan.status, "progress": {"step": 50}})
    later = run(again, [pod(0, attempt=1), pod(1, attempt=1, phase="Failed", exit_code=1)],
                now=NOW + timedelta(minutes=1))  # fmt: skip
    assert later.status["goodput"] == {"restartedAt": "2026-11-24T12:00:00Z", "stepAtRestart": 57}


def gated_pod(index: int) -> dict:
    """A pod Kueue's webhook holds at its admission gate: unscheduled, Pending."""
    p = pod(index, phase="Pending")
    p["spec"] = {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]}
    p["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
    ]
    return p


def kueue_job() -> JobBuilder:
    gang = {"enabled": True, "provider": "kueue", "queue": "team"}
    return two_workers(spec__scheduling__gang=gang)


def test_pods_at_kueues_gate_make_a_queued_job_with_kueues_reason_not_a_stuck_one():
    obj = stored(kueue_job(), phase="Pending")
    reason = "couldn't assign flavors to pod set main: insufficient unused quota for pods"
    later = NOW + timedelta(minutes=10)  # far past pending_timeout
    pods = [view(gated_pod(0)), view(gated_pod(1))]
    plan = decide(obj, pods, later, SETTINGS, queue_message=reason)
    assert plan.status["phase"] == "Queued"
    queued = next(c for c in plan.status["conditions"] if c["type"] == "Queued")
    assert queued["status"] == "True" and queued["reason"] == "WaitingForAdmission"
    assert queued["message"] == (
        f"waiting for Kueue to admit all 2 pods (LocalQueue team): {reason}"
    )
    assert not any(c["type"] == "PodsNotStarting" for c in plan.status["conditions"])
    assert [e.reason for e in plan.events] == ["WaitingForAdmission"]
    assert plan.create == [] and plan.delete == []

    # Admitted: the gate is gone, the pods run; the condition says so and the job runs.
    admitted = run(stored(kueue_job(), **plan.status), [pod(0), pod(1)])
    assert admitted.status["phase"] == "Running"
    queued = next(c for c in admitted.status["conditions"] if c["type"] == "Queued")
    assert (queued["status"], queued["reason"]) == ("False", "Admitted")


def test_queued_without_kueues_word_yet_still_says_queued():
    plan = run(stored(kueue_job(), phase="Pending"), [gated_pod(0), gated_pod(1)])
    assert plan.status["phase"] == "Queued"
    message = next(c for c in plan.status["conditions"] if c["type"] == "Queued")["message"]
    assert message.endswith("(LocalQueue team): Kueue has not said why yet")


def grouped(p: dict, ended: bool = False) -> dict:
    """``p`` as the operator renders it under Kueue (and as marked once its group ended)."""
    p["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] = "dn"
    if ended:
        p["metadata"]["annotations"] = {"kueue.x-k8s.io/retriable-in-group": "false"}
    return p


def test_a_failed_job_under_kueue_ends_its_pod_group_once():
    """Kueue keeps a group's quota for replacement pods until the group is ended."""
    obj = stored(kueue_job())
    obj["spec"]["runPolicy"]["backoffLimit"] = 0
    plan = run(obj, [grouped(pod(0, phase="Failed", exit_code=1)), grouped(pod(1))])
    assert plan.status["phase"] == "Failed"
    assert plan.end_group == ["dn-worker-0", "dn-worker-1"]
    ended = [grouped(pod(0, phase="Failed", exit_code=1), True), grouped(pod(1), True)]
    assert run(stored(kueue_job(), **plan.status), ended).end_group == []


def test_a_failed_job_outside_kueue_marks_no_pod():
    obj = stored(two_workers())
    obj["spec"]["runPolicy"]["backoffLimit"] = 0
    plan = run(obj, [pod(0, phase="Failed", exit_code=1), pod(1)])
    assert plan.status["phase"] == "Failed" and plan.end_group == []


def test_a_pod_kueue_stopped_is_a_preemption_that_says_kueues_words():
    """Kueue marks each pod of a group it preempts with TerminationTarget, then deletes it:
    whatever the exit code, a preemption (not counted), and the job says what Kueue said."""
    words = (
        "Preempted to accommodate a workload (UID: u9) due to prioritization in the ClusterQueue"
    )
    stopped = {"type": "TerminationTarget", "status": "True", "reason": "WorkloadEvicted",
               "message": words}  # fmt: skip
    ended = grouped(pod(1, phase="Failed", exit_code=143, status={"conditions": [stopped]}))
    plan = run(stored(kueue_job(), restarts=0), [grouped(pod(0)), ended])
    assert (plan.status["restarts"], plan.status["preemptions"]) == (0, 1)
    # The attempt's group ends with it (Kueue then lets its pods go); the next one queues.
    assert plan.status["attempt"] == 1
    assert plan.end_group == ["dn-worker-0", "dn-worker-1"]
    restarting = next(c for c in plan.status["conditions"] if c["type"] == "Restarting")
    assert f"dn-worker-1 was stopped by Kueue (WorkloadEvicted: {words})" in restarting["message"]
    assert any(words in e.message for e in plan.events)


def test_a_pod_first_seen_deleting_still_says_kueue_stopped_it():
    """Kueue marks a pod, then deletes it; under load one watch event brings both (seen in
    CI): the pod is gone from the attempt, but the job still says Kueue stopped it."""
    stopped = {"type": "TerminationTarget", "status": "True", "reason": "WorkloadEvicted",
               "message": "Preempted to accommodate a workload"}  # fmt: skip
    deleting = grouped(
        pod(1, meta={"deletionTimestamp": "2026-11-24T11:59:59Z"},
            status={"conditions": [stopped]})
    )  # fmt: skip
    plan = run(stored(kueue_job(), restarts=0), [grouped(pod(0)), deleting])
    assert (plan.status["restarts"], plan.status["preemptions"]) == (0, 1)
    restarting = next(c for c in plan.status["conditions"] if c["type"] == "Restarting")
    assert "dn-worker-1 was stopped by Kueue (WorkloadEvicted: Preempted" in restarting["message"]
    assert "disappeared" not in restarting["message"]
