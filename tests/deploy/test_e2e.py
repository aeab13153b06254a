"""The chart end to end on the local cluster, with the steps hack/kind-e2e.sh runs
(tests/deploy/e2e.py): `helm install` to Ready, the chart's operator from `densenet-operator:dev`
in a container on the real node (containerd and the kubelet: the ServiceAccount token the
kubelet mounts, the `kubernetes` Service through kube-proxy, the chart's memory limit in a real
cgroup) running a real two-worker CPU job from `densenet-trainer:dev` to Succeeded, its token
refused outside the chart's grants, and a real Prometheus scraping the operator and the trainers
through the chart's ServiceMonitor and PodMonitor while every dashboard query and alert rule
runs against what it scraped.

One job serves every test of the module (a module fixture): it trains for real (the tests'
one-layer-per-block DenseNet, tests/network.py, at 32x32 on a tiny folder dataset so that
evaluations run and fill the eval panels), and one worker is deleted once the pods run, so
the whole-job restart path and the restarts panel get real data.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from densenet_dashboards import expand, panel_queries
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from devcluster.config import API_SERVER_PORT, FAKE_NODE_LABEL, REAL_NODE_LABEL, REAL_NODE_POD_CIDR
from devcluster.realnode import NAME as REAL_NODE
from tests.deploy import e2e, promconfig
from tests.deploy.prometheus import Prometheus, PrometheusSetupError
from tests.deploy.tools import DASHBOARD_DIR, RULES, helm
from tests.images.conftest import TAG, Image
from tests.network import TINY_ARGS
from tests.polling import eventually
from tests.real_node import (
    KUBERNETES_SERVICE_HOST,
    NODE_SELECTOR,
    TOLERATION,
    container_pid,
    host_dir,
    start_with_images,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RELEASE = "dn"
SCRAPE = "2s"  # the monitors' intervals for this test (values), so a short job is scraped often
MAX_STEPS = 160  # ~20 s of the tests' network (tests/network.py): scraped several times
# Panels whose series exist only after something went wrong: the operator creates the
# reconcile-error counter's series on the first error. Their queries must still run.
# Panels with no series until something goes wrong (a restart that recovered, steps redone).
EMPTY_WHEN_HEALTHY = {"Operator reconcile errors", "Recovery time", "Steps lost per hour"}
ESCAPED_NODE_LABEL = REAL_NODE_LABEL.replace(".", "\\.")  # helm --set path syntax


@dataclass
class Run:
    target: e2e.Target
    system: str  # the release namespace
    jobs: str  # the one namespace the chart's operator watches
    other: str  # a namespace it was not given
    job: str
    install_seconds: float
    status: dict[str, Any]
    operator_pod: kube_client.V1Pod
    operator_status: dict[str, int]  # /proc/<pid>/status of the operator process, kB
    operator_environ: dict[str, str]
    prometheus: Prometheus
    started: float
    finished: float
    decoy: str
    notes: list[str] = field(default_factory=list)


def write_png(path: Path, size: int, shade: int, seed: int) -> None:
    """A size x size RGB PNG around `shade`, written with zlib (no imaging library needed)."""
    rows = b"".join(
        b"\x00" + bytes((shade + (x * 7 + y * 13 + seed * 31) % 40) % 256 for x in range(size * 3))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def tiny_dataset(root: Path) -> Path:
    """Two classes (dark, light): 16 training and 4 validation images each, 32x32."""
    for split, count in (("train", 16), ("val", 4)):
        for label, shade in (("dark", 20), ("light", 200)):
            directory = root / split / label
            directory.mkdir(parents=True)
            for i in range(count):
                write_png(directory / f"{i}.png", 32, shade, i)
    return root


def cpu_job(data: Path) -> dict[str, Any]:
    """examples/cpu-smoke.yaml on the real node (from the chart's trainer image): train and
    evaluate on the tiny folder dataset (4 steps an epoch at 2 workers x batch 4, an evaluation
    every 5 epochs)."""
    job = yaml.safe_load((REPO / "examples" / "cpu-smoke.yaml").read_text())
    spec = job["spec"]
    spec["mode"] = "train_and_evaluate"
    spec["dataset"] = {
        "format": "folder",
        "path": "/data/e2e",
        "numClasses": 2,
        "imageSize": 32,
        "volume": {"hostPath": {"path": str(data), "type": "Directory"}},
    }
    spec["training"].update(
        {"batchSize": 4, "maxSteps": MAX_STEPS, "iterationsPerLoop": 2, "displayEvery": 4,
         "epochsBetweenEvals": 5, "warmupEpochs": 0, "extraArgs": TINY_ARGS}
    )  # fmt: skip
    spec["scheduling"] = {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]}
    # The node has this machine's 2 CPUs, shared with the operator and the control plane.
    spec["template"]["resources"] = {"requests": {"cpu": "100m", "memory": "1Gi"}}
    return job


def decoy_pod(namespace: str) -> dict[str, Any]:
    """A pod that looks like a trainer to the PodMonitor but sits on a fake (kwok) node: its IP
    leads nowhere, so Prometheus must drop it, never dial it."""
    return {
        "metadata": {
            "name": "decoy-on-fake-node",
            "labels": {
                "app.kubernetes.io/name": "densenet-trainer",
                "app.kubernetes.io/managed-by": "densenet-operator",
            },
        },
        "spec": {
            "nodeSelector": {FAKE_NODE_LABEL: "true"},
            "tolerations": [{"key": FAKE_NODE_LABEL, "operator": "Exists"}],
            "containers": [
                {
                    "name": "t",
                    "image": "densenet-trainer:0.1.0",
                    "ports": [{"name": "metrics", "containerPort": 9410}],
                }
            ],
        },
    }


def prometheus_identity(core, rbac, namespace: str, token_dir: Path) -> dict[str, Any]:
    """A ServiceAccount that may discover pods, services, endpoint slices and nodes (as
    kube-prometheus grants Prometheus), its token in a file: the SD connection settings."""
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "prometheus"}})
    name = f"{namespace}-prometheus"
    rbac.create_cluster_role(
        {
            "metadata": {"name": name, "labels": {"densenet.dev/test": "true"}},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "endpoints", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name, "labels": {"densenet.dev/test": "true"}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": namespace}],
        }
    )
    token = core.create_namespaced_service_account_token(
        "prometheus", namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    token_file = token_dir / "prometheus.token"
    token_file.write_text(token)
    return {"token_file": str(token_file), "cluster_role": name}


def proc_status(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            found[key] = int(value.split()[0])
    return found


@pytest.fixture(scope="module")
def run(
    real_node_session, api_client, tmp_path_factory, *, chart_crds, monitoring_crds,
    operator_image: Image, trainer_image: Image,
) -> Iterator[Run]:  # fmt: skip
    cluster = real_node_session
    start_with_images(cluster.paths, [operator_image.name, trainer_image.name])
    yield from _run(cluster, api_client, tmp_path_factory, trainer_image)


def _run(cluster, api_client, tmp_path_factory, trainer_image: Image) -> Iterator[Run]:
    core = kube_client.CoreV1Api(api_client)
    rbac = kube_client.RbacAuthorizationV1Api(api_client)
    custom = kube_client.CustomObjectsApi(api_client)
    work = tmp_path_factory.mktemp("e2e")
    stem = f"e2e-{uuid.uuid4().hex[:6]}"
    system, jobs, other = f"{stem}-system", f"{stem}-jobs", f"{stem}-other"
    for name in (system, jobs, other):
        core.create_namespace({"metadata": {"name": name, "labels": {"densenet.dev/test": "true"}}})
    target = e2e.Target(api_client, helm(), str(cluster.kubeconfig), RELEASE, system)
    prometheus = Prometheus(work)
    identity: dict[str, Any] = {}
    data = host_dir("densenet-e2e-")
    try:
        install_seconds = target.install(
            values=[
                f"watchNamespaces={{{jobs}}}",
                f"monitoring.podMonitor.interval={SCRAPE}",
                f"monitoring.serviceMonitor.interval={SCRAPE}",
                "operator.extraArgs={--progress-interval=2}",
                # The admin's policy lets jobs read the test's dataset from the node's disk.
                f"policy.hostPathPrefixes={{{data}}}",
                # The images `make images` built, loaded into the node's containerd.
                f"image.tag={TAG}",
                "image.pullPolicy=Never",
                f"operator.trainerImage={trainer_image.name}",
                f"tolerations[0].key={REAL_NODE_LABEL}",
                "tolerations[0].operator=Exists",
                "tolerations[0].effect=NoSchedule",
            ],
            strings=[f"nodeSelector.{ESCAPED_NODE_LABEL}=true"],
        )
        # The monitors as the cluster stores them, turned into Prometheus's scrape jobs.
        monitors = [
            {**obj, "kind": kind}
            for kind, plural in (
                ("PodMonitor", "podmonitors"),
                ("ServiceMonitor", "servicemonitors"),
            )
            for obj in custom.list_namespaced_custom_object(
                "monitoring.coreos.com", "v1", system, plural
            )["items"]
        ]
        identity = prometheus_identity(core, rbac, system, work)
        api = {
            "api_server": f"https://127.0.0.1:{API_SERVER_PORT}",
            "tls_config": {"ca_file": str(cluster.paths.ca_cert)},
            "authorization": {"credentials_file": identity["token_file"]},
        }
        try:
            prometheus.start(promconfig.scrape_configs(monitors, api), [str(RULES)], SCRAPE)
        except PrometheusSetupError as err:
            pytest.fail(str(err))
        core.create_namespaced_pod(jobs, decoy_pod(jobs))

        def preempt_a_worker(name: str) -> None:
            """Once both workers run, delete worker-1: a whole-job restart (not counted)."""

            def both_running() -> bool:
                pods = target.worker_pods(jobs, name)
                return len(pods) == 2 and all(p.status.phase == "Running" for p in pods)

            eventually(both_running, timeout=120, what="both workers Running")
            core.delete_namespaced_pod(f"{name}-worker-1", jobs)
            eventually(
                lambda: target.job_status(jobs, name).get("preemptions", 0) >= 1,
                timeout=60, what="the operator to restart the job",
            )  # fmt: skip

        started = time.time()
        job = cpu_job(tiny_dataset(data))
        status = e2e.run_job_to_success(target, jobs, job, 420, after_apply=preempt_a_worker)
        finished = time.time()
        pod = target.operator_pod()
        pid = container_pid(cluster.paths, pod.status.container_statuses[0].container_id)
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in item
        )
        yield Run(
            target, system, jobs, other, job["metadata"]["name"], install_seconds, status, pod,
            proc_status(pid), environ, prometheus, started, finished, "decoy-on-fake-node",
        )  # fmt: skip
    finally:
        prometheus.stop()
        target.uninstall()
        shutil.rmtree(data, ignore_errors=True)
        for name in (system, jobs, other):
            core.delete_namespace(name, propagation_policy="Background")
        if identity:
            rbac.delete_cluster_role_binding(identity["cluster_role"])
            rbac.delete_cluster_role(identity["cluster_role"])


# --- install and RBAC ---------------------------------------------------------------------
def test_helm_install_reaches_ready_with_the_operator_on_the_real_node(run: Run) -> None:
    print(f"\nhelm install to Ready: {run.install_seconds:.1f} s")
    assert run.install_seconds < 120
    pod = run.operator_pod
    assert pod.spec.node_name == REAL_NODE
    assert pod.status.container_statuses[0].container_id.startswith("containerd://")
    assert pod.spec.containers[0].image == f"densenet-operator:{TAG}"
    assert all(c.type != "Ready" or c.status == "True" for c in pod.status.conditions)
    assert pod.spec.service_account_name == f"{RELEASE}-densenet-operator"


def test_the_chart_operator_ran_a_real_job_to_succeeded_in_cluster(run: Run) -> None:
    status = run.status
    assert status["phase"] == "Succeeded"
    assert status["attempt"] >= 1 and status["preemptions"] >= 1  # the deleted worker
    assert status["replicas"]["succeeded"] == 2
    # The operator pod dialled the chief over the pod network for progress.
    assert status["progress"]["step"] > 0 and status["progress"]["totalSteps"] == MAX_STEPS
    # In-cluster config from the pod's ServiceAccount, never a kubeconfig.
    env = run.operator_environ
    assert "KUBECONFIG" not in env
    assert env["KUBERNETES_SERVICE_HOST"] == KUBERNETES_SERVICE_HOST  # through kube-proxy


def test_operator_memory(run: Run) -> None:
    """Peak resident memory of the operator process under the chart's limit (256Mi)."""
    hwm, rss = run.operator_status["VmHWM"], run.operator_status["VmRSS"]
    print(f"\noperator pod: VmHWM {hwm / 1024:.0f} MiB, VmRSS {rss / 1024:.0f} MiB")
    limit = run.operator_pod.spec.containers[0].resources.limits["memory"]
    assert limit == "256Mi"
    assert hwm < 256 * 1024


def chart_account_api(run: Run, cluster) -> kube_client.ApiClient:
    """An API client with a fresh token of the chart's ServiceAccount (TokenRequest)."""
    account = run.operator_pod.spec.service_account_name
    token = run.target.core.create_namespaced_service_account_token(
        account, run.system, {"spec": {"expirationSeconds": 600}}
    ).status.token
    configuration = kube_client.Configuration()
    configuration.host = run.target.api.configuration.host
    configuration.ssl_ca_cert = str(cluster.paths.ca_cert)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return kube_client.ApiClient(configuration)


def refused(call) -> bool:
    try:
        call()
    except ApiException as err:
        assert err.status == 403, err
        return True
    return False


def test_the_chart_token_is_refused_outside_its_grants(run: Run, cluster) -> None:
    api = chart_account_api(run, cluster)
    who = kube_client.AuthenticationV1Api(api).create_self_subject_review({"metadata": {}})
    account = run.operator_pod.spec.service_account_name
    assert who.status.user_info.username == f"system:serviceaccount:{run.system}:{account}"
    core, custom = kube_client.CoreV1Api(api), kube_client.CustomObjectsApi(api)
    group = (e2e.GROUP, e2e.VERSION)
    # What the chart grants, in the watched namespace.
    custom.list_namespaced_custom_object(*group, run.jobs, e2e.PLURAL)
    core.list_namespaced_pod(run.jobs)
    # Everything else.
    pod = {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}}
    checks = {
        "pods in another namespace": lambda: core.list_namespaced_pod(run.other),
        "pods everywhere": core.list_pod_for_all_namespaces,
        "jobs in another namespace": lambda: custom.list_namespaced_custom_object(
            *group, run.other, e2e.PLURAL
        ),
        "creating a pod in its own namespace": lambda: core.create_namespaced_pod(run.system, pod),
        "secrets of the watched namespace": lambda: core.list_namespaced_secret(run.jobs),
        "a secret by name": lambda: core.read_namespaced_secret("any", run.jobs),
        "listing nodes (it may only get one by name)": core.list_node,
    }
    allowed = [what for what, call in checks.items() if not refused(call)]
    assert not allowed, f"the chart's ServiceAccount may also read/write: {allowed}"


# --- Prometheus ----------------------------------------------------------------------------
def range_of(run: Run, expr: str) -> list[dict[str, Any]]:
    return run.prometheus.query_range(expr, run.started, run.finished, 2)


def test_prometheus_scraped_the_operator_and_every_trainer_and_never_a_fake_node(run: Run) -> None:
    up = range_of(run, 'max by (pod) (up{job="densenet-trainer", endpoint="metrics"})')
    pods = {series["metric"]["pod"] for series in up}
    # Both workers of both attempts (pods are recreated with the same names).
    assert pods == {f"{run.job}-worker-0", f"{run.job}-worker-1"}, up
    # Each was scraped successfully (up is 0 while TensorFlow starts, before /metrics binds).
    assert all(any(v == "1" for _, v in series["values"]) for series in up), up
    (operator,) = run.prometheus.query('up{job="densenet-operator"}')
    assert operator["value"][1] == "1" and operator["metric"]["namespace"] == run.system
    targets = run.prometheus.targets()
    for target in targets["activeTargets"]:
        host = target["labels"].get("instance", target["discoveredLabels"]["__address__"])
        assert ipaddress.ip_address(host.rsplit(":", 1)[0]) in REAL_NODE_POD_CIDR, target
    dropped = [
        t["discoveredLabels"].get("__meta_kubernetes_pod_name") for t in targets["droppedTargets"]
    ]
    assert run.decoy in dropped
    active = [
        t["discoveredLabels"].get("__meta_kubernetes_pod_name") for t in targets["activeTargets"]
    ]
    assert run.decoy not in active


def test_every_dashboard_panel_has_data(run: Run) -> None:
    board = json.loads((DASHBOARD_DIR / "densenet-training.json").read_text())
    empty = []
    for query in panel_queries(board):
        result = range_of(run, expand(query.expr))  # an invalid query raises here
        if not result and query.panel not in EMPTY_WHEN_HEALTHY:
            empty.append(f"{query.panel}: {query.expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_alert_rule_parses_and_evaluates(run: Run) -> None:
    rules = run.prometheus.rules()
    groups = yaml.safe_load(RULES.read_text())["groups"]
    expected = {r.get("alert") or r["record"] for g in groups for r in g["rules"]}
    assert {r["name"] for r in rules} == expected
    for rule in rules:
        assert rule["health"] == "ok" and not rule.get("lastError"), rule
    middle = (run.started + run.finished) / 2
    for group in groups:
        for rule in group["rules"]:
            run.prometheus.query(rule["expr"], at=middle)  # raises unless it evaluates
    # The recording rules produce series from the real scrape.
    assert range_of(run, "densenet_job:images_processed:rate5m")
    assert range_of(run, "densenet_rank:step_duration_seconds:mean10m")
    # A healthy operator and a healthy job fire nothing.
    firing = run.prometheus.query('ALERTS{alertstate="firing"}')
    assert not firing, firing
