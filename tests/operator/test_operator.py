"""The operator against the real API server: kwok nodes for scale, the real node (containerd and
the kubelet, pods from the trainer image) for real processes. Each test runs its own
`densenet-operator run` for its own namespace."""

from __future__ import annotations

import pytest
from kubernetes import client as kube_client

from tests.network import TINY_ARGS
from tests.operator.harness import OperatorProcess, fake_trainer, on_node, real_node_job
from tests.operator.jobs import JobBuilder, on_kwok
from tests.polling import eventually

# The real node for the module (started once; the kwok tests do not need it).
pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("real_node")]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(2, "UsageError"), (3, "DataError"), (4, "Diverged"), (5, "MissingDevice")],
)
def test_exit_codes_no_retry_can_fix_fail_the_job(jobs, operator, fake_dir, code, reason):
    operator()
    jobs.create(on_node("perm", fake_dir, FAKE_EXIT=code).build())
    status = jobs.wait_phase("perm", "Failed")
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == reason
    assert f"exited {code}" in failed["message"]
    assert status["restarts"] == 0
    assert status["attempt"] == 0


def test_a_crash_restarts_the_whole_job_which_then_succeeds(jobs, operator, fake_dir):
    op = operator()
    jobs.create(on_node("crash", fake_dir, FAKE_EXIT=1, FAKE_ONCE=1, FAKE_SLEEP=1).build())
    status = jobs.wait_phase("crash", "Succeeded")
    assert status["restarts"] >= 1
    assert status["attempt"] == status["restarts"] + status.get("preemptions", 0)
    restarting = jobs.condition("crash", "Restarting")
    assert "exited 1 (crash)" in restarting["message"]
    assert 'densenet_operator_jobs_restarted_total{accelerator="cpu"' in op.metrics()
    events = jobs.core.list_namespaced_event(jobs.namespace).items
    assert any(e.reason == "WorkerFailed" and "exited 1" in e.message for e in events)


def test_a_running_job_with_no_step_is_stalled_and_restarted_when_asked(jobs, operator, fake_dir):
    op = operator()
    # Trainers that start and never report a step (the stand-in serves no /metrics).
    quiet = on_node("quiet", fake_dir, FAKE_SLEEP=900).set(
        "spec.runPolicy.progressDeadlineSeconds", 30
    )
    jobs.create(quiet.build())
    # A second job, which restarts when stalled, runs alongside (both wait the same deadline).
    jobs.create(
        on_node("kick", fake_dir, FAKE_SLEEP=900)
        .set("spec.runPolicy.progressDeadlineSeconds", 30)
        .set("spec.runPolicy.stalledAction", "Restart")
        .build()
    )
    jobs.wait_phase("quiet", "Running")
    eventually(
        lambda: (jobs.condition("quiet", "Stalled") or {}).get("status") == "True",
        timeout=60,
        what="quiet Stalled",
    )
    stalled = jobs.condition("quiet", "Stalled")
    assert stalled["reason"] == "NoProgress"
    assert stalled["message"].startswith("no step since the workers started at ")
    assert jobs.status("quiet")["phase"] == "Running"  # stalledAction None: report only

    def gauge_counts_the_stalled_jobs() -> bool:
        now = [
            n
            for n in ("quiet", "kick")
            if (jobs.condition(n, "Stalled") or {}).get("status") == "True"
        ]
        return "quiet" in now and op.sample("densenet_operator_jobs_stalled") == len(now)

    eventually(gauge_counts_the_stalled_jobs, timeout=30, what="the stalled gauge")
    events = jobs.core.list_namespaced_event(jobs.namespace).items
    stalled_events = [e for e in events if e.reason == "Stalled"]
    assert [e.type for e in stalled_events if e.involved_object.name == "quiet"] == ["Warning"]

    eventually(
        lambda: jobs.status("kick").get("restarts", 0) >= 1, timeout=90, what="kick restarted"
    )
    restarting = jobs.condition("kick", "Restarting")
    assert "stalled: no step since the workers started" in restarting["message"]


def test_preemption_does_not_count_against_backoff_limit(jobs, operator, fake_dir):
    operator()
    job = on_node("preempt", fake_dir, FAKE_EXIT=75, FAKE_ONCE=1, FAKE_SLEEP=1)
    jobs.create(job.set("spec.runPolicy.backoffLimit", 0).build())
    status = jobs.wait_phase("preempt", "Succeeded")
    assert status["restarts"] == 0
    assert status["preemptions"] >= 1


def test_backoff_limit_exhausted_fails_with_the_last_cause(jobs, operator, fake_dir):
    operator()
    job = on_node("limit", fake_dir, FAKE_EXIT=1).set("spec.runPolicy.backoffLimit", 1)
    jobs.create(job.build())
    jobs.wait_phase("limit", "Failed")
    failed = jobs.condition("limit", "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "last cause: limit-worker-" in failed["message"]
    assert jobs.status("limit")["restarts"] == 1


def test_deadline_fails_the_job_and_stops_its_pods(jobs, operator, fake_dir):
    operator()
    job = on_node("deadline", fake_dir, FAKE_SLEEP=600)
    jobs.create(job.set("spec.runPolicy.activeDeadlineSeconds", 4).build())
    jobs.wait_phase("deadline", "Failed", timeout=60)
    assert jobs.condition("deadline", "Failed")["reason"] == "DeadlineExceeded"
    eventually(lambda: not jobs.pods("deadline"), timeout=60, what="pods deleted")


def test_ttl_deletes_the_finished_job_and_its_children(jobs, operator, fake_dir):
    operator()
    job = on_node("ttl", fake_dir, replicas=1).set("spec.runPolicy.ttlSecondsAfterFinished", 1)
    jobs.create(job.build())
    eventually(lambda: jobs.gone("ttl"), timeout=90, what="the job deleted by its TTL")


def test_suspend_deletes_the_pods_and_resume_brings_them_back(jobs, operator, fake_dir):
    operator()
    jobs.create(on_node("pause", fake_dir, FAKE_SLEEP=600).build())
    jobs.wait_phase("pause", "Running")
    jobs.patch("pause", {"spec": {"runPolicy": {"suspend": True}}})
    jobs.wait_phase("pause", "Suspended")
    eventually(lambda: not jobs.pods("pause"), timeout=60, what="pods gone while suspended")
    assert jobs.condition("pause", "Suspended")["status"] == "True"
    jobs.patch("pause", {"spec": {"runPolicy": {"suspend": False}}})
    status = jobs.wait_phase("pause", "Running")
    assert status["restarts"] == 0
    assert len(jobs.pods("pause")) == 2


def test_a_missing_configmap_gives_a_clear_condition_not_a_crash_loop(jobs, operator, fake_dir):
    op = operator()
    missing = {"configMapKeyRef": {"name": "no-such-config", "key": "k"}}
    template = fake_trainer(fake_dir)
    template["env"].append({"name": "FROM_MISSING", "valueFrom": missing})
    job = real_node_job(JobBuilder("badref"))
    jobs.create(job.set("spec.template", template).build())

    def reported() -> dict | None:
        condition = jobs.condition("badref", "PodsNotStarting")
        return condition if condition and condition["status"] == "True" else None

    condition = eventually(reported, timeout=60, what="a PodsNotStarting condition")
    assert "CreateContainerConfigError" in condition["message"]
    assert "no-such-config" in condition["message"]
    assert op.process.poll() is None
    assert jobs.status("badref")["phase"] in ("Pending", "Initializing")


STATIC_SERVERS = [
    {"serverId": f"10.10.0.{i}", "devices": [{"deviceId": "0", "deviceIp": f"192.168.1.{i}"}]}
    for i in range(2)
]


@pytest.mark.parametrize(
    ("builder", "phase"),
    [
        (on_kwok("kcpu", "cpu", 1), "Running"),
        (
            on_kwok("kgaudi", "gaudi", 4).set("spec.template.resources.requests.memory", "1Gi"),
            "Running",
        ),
        (
            on_kwok("kascend", "ascend", 1).set(
                "spec.ascend", {"source": "static", "servers": STATIC_SERVERS}
            ),
            "Running",
        ),
        # No fake node has NVIDIA GPUs: the scheduler's message must reach the job.
        (on_kwok("knvidia", "nvidia", 8), "Pending"),
    ],
    ids=["cpu", "gaudi", "ascend-static", "nvidia-unschedulable"],
)
def test_children_match_the_render_and_go_with_the_job(jobs, operator, api_client, builder, phase):
    from densenet_operator import DEFAULT_TRAINER_IMAGE, schema
    from densenet_operator.job import Job
    from densenet_operator.render import NetworkAccess, render

    operator()
    created = jobs.create(builder.build())
    name = created["metadata"]["name"]
    status = jobs.wait_phase(name, phase)
    wanted = render(
        Job.from_object(schema.apply(builder.build()), jobs.namespace),
        DEFAULT_TRAINER_IMAGE,
        network=NetworkAccess((jobs.namespace,)),  # as the harness runs the operator
    )
    pods = {p.metadata.name: p for p in jobs.pods(name)}
    assert sorted(pods) == sorted(p["metadata"]["name"] for p in wanted.pods)
    serialize = api_client.sanitize_for_serialization
    for want in wanted.pods:
        got = serialize(pods[want["metadata"]["name"]])
        assert got["spec"]["containers"][0]["command"] == want["spec"]["containers"][0]["command"]
        assert got["spec"]["containers"][0]["env"] == want["spec"]["containers"][0]["env"]
        assert got["metadata"]["labels"] == want["metadata"]["labels"]
        (owner,) = got["metadata"]["ownerReferences"]
        assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True
    for cm in wanted.config_maps:
        got = jobs.core.read_namespaced_config_map(cm["metadata"]["name"], jobs.namespace)
        assert got.data == cm["data"]
    networking = kube_client.NetworkingV1Api(api_client)
    (want,) = wanted.network_policies
    got = serialize(networking.read_namespaced_network_policy(name, jobs.namespace))
    assert got["spec"] == want["spec"]
    assert got["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    if phase == "Pending":
        eventually(
            lambda: (jobs.condition(name, "PodsNotStarting") or {}).get("status") == "True",
            timeout=30,
            what="PodsNotStarting",
        )
        assert "Insufficient nvidia.com/gpu" in jobs.condition(name, "PodsNotStarting")["message"]
    else:
        assert status["replicas"]["active"] == 2
    jobs.delete(name)
    # The garbage collector removes every child through its ownerReference.
    eventually(lambda: not jobs.pods(name), timeout=60, what="pods garbage-collected")
    eventually(
        lambda: not jobs.core.list_namespaced_service(jobs.namespace).items,
        timeout=60,
        what="Service garbage-collected",
    )
    eventually(
        lambda: not networking.list_namespaced_network_policy(jobs.namespace).items,
        timeout=60,
        what="NetworkPolicy garbage-collected",
    )


def test_operator_killed_while_creating_a_16_pod_job_creates_exactly_16(jobs, operator):
    op = operator()
    jobs.create(on_kwok("big", "cpu", 1, replicas=16).build())
    eventually(lambda: jobs.pods("big"), timeout=30, interval=0.05, what="the first pod")
    op.kill()
    operator()
    status = jobs.wait_phase("big", "Running", timeout=120)
    pods = jobs.pods("big")
    assert len(pods) == 16
    assert sorted(int(p.metadata.labels["densenet.dev/replica-index"]) for p in pods) == list(
        range(16)
    )
    assert {p.metadata.labels["densenet.dev/attempt"] for p in pods} == {"0"}
    assert status["restarts"] == 0 and status["attempt"] == 0


def test_pods_on_fake_nodes_are_never_dialled(jobs, operator):
    op = operator()
    jobs.create(on_kwok("nodial", "cpu", 1, replicas=1).build())
    jobs.wait_phase("nodial", "Running")

    def skipped() -> bool:
        return 'densenet_operator_progress_reads_total{result="skipped"}' in op.metrics()

    eventually(skipped, timeout=30, what="a progress read skipped")
    text = op.metrics()
    assert 'result="ok"' not in text and 'result="failed"' not in text
    assert "progress" not in jobs.status("nodial")


@pytest.mark.slow
def test_progress_of_a_real_trainer_reaches_the_status(jobs, operator):
    operator("--progress-interval", "2")
    job = (
        real_node_job(JobBuilder("live"))
        .set("spec.dataset", {"format": "synthetic", "numClasses": 10, "imageSize": 32})
        .set(
            "spec.training",
            {
                "batchSize": 8,
                "maxSteps": 400,
                "iterationsPerLoop": 5,
                "displayEvery": 5,
                "extraArgs": TINY_ARGS,
            },
        )
    )
    jobs.create(job.build())

    def progress(min_step: int) -> dict | None:
        found = jobs.status("live").get("progress") or {}
        return found if found.get("step", 0) >= min_step else None

    first = eventually(lambda: progress(1), timeout=120, what="a first progress read")
    later = eventually(lambda: progress(first["step"] + 5), timeout=120, what="the step moving")
    assert later["totalSteps"] == 400
    assert 0 < later["percent"] <= 100
    assert later["imagesPerSecond"] > 0
    assert later["loss"] > 0 and later["lr"] > 0
    assert later["updated"] >= first["updated"]
    jobs.wait_phase("live", "Succeeded", timeout=180)
    printed = jobs.get("live")["status"]["progress"]
    assert printed["step"] <= 400


def test_a_volume_the_pods_cannot_mount_gives_a_clear_condition(jobs, operator, fake_dir):
    operator()
    job = (
        on_node("badvol", fake_dir, replicas=1)
        .set("spec.template.volumes", [{"name": "extra", "configMap": {"name": "absent-cm"}}])
        .set("spec.template.volumeMounts", [{"name": "extra", "mountPath": "/extra"}])
    )
    jobs.create(job.build())

    def reported() -> dict | None:
        condition = jobs.condition("badvol", "PodsNotStarting")
        return condition if condition and condition["status"] == "True" else None

    condition = eventually(reported, timeout=60, what="a PodsNotStarting condition")
    assert "absent-cm" in condition["message"]


def test_liveness_and_metrics_endpoints(cluster, namespace, densenet_crd, tmp_path):
    import subprocess
    import urllib.request

    from tests.operator.harness import free_port

    port = free_port()
    op = OperatorProcess(
        cluster, namespace, tmp_path, "--liveness", f"http://127.0.0.1:{port}/healthz"
    )
    # The harness passes --liveness '' first; the later flag wins.
    op.start()
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        eventually(healthy, timeout=30, what="kopf's liveness endpoint")
        checked = subprocess.run(
            ["promtool", "check", "metrics"],
            input=op.metrics(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert 'densenet_operator_reconcile_errors_total{handler="job"} 0.0' in op.metrics()
        for name in (
            "densenet_operator_jobs_created_total",
            "densenet_operator_reconcile_duration_seconds",
            "densenet_operator_jobs",
        ):
            assert f"# TYPE {name.removesuffix('_total')}" in op.metrics()
    finally:
        op.stop()
