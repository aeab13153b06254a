"""End-to-end steps of the chart, shared by the local cluster tests (tests/deploy/test_e2e.py)
and hack/kind-e2e.sh: install the chart, apply a job, wait for Succeeded, check the metrics.

The steps talk only to the API server (the kubernetes client) and run helm: no assumption about
where pods run, so they work on kind with real images and on the local control plane with the
real node. Metrics are read through the API server's service and pod proxies, as
`kubectl get --raw` would, and never from a pod on a fake node.

Command line (what hack/kind-e2e.sh runs):

    python -m tests.deploy.e2e --helm helm --namespace densenet-system \
        --jobs-namespace default --job examples/cpu-smoke.yaml --set image.pullPolicy=Never
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from densenet_contract import labels, ports
from tests.polling import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "densenet-operator"
GROUP, VERSION, PLURAL = "densenet.dev", "v1alpha1", "densenettrainingjobs"
FAKE_NODE_LABEL = "densenet.dev/fake-node"  # nodes whose pods lead nowhere (local kwok nodes)
METRICS_PORT_NAME = "http-metrics"  # the chart's metrics Service port
# Seed 000's training line (trainer/src/densenet_trainer/logs.py), as its parsers read it.
SEED_LINE = re.compile(
    r"^step:\s*(\d+)  epoch:\s*[\d.]+  FPS:\s*[\d.]+  loss:[\d.]+  reg_loss:[\d.]+  "
    r"total_loss:[\d.]+  lr:[\d.]+$",
    re.M,
)
EVAL_LINE = re.compile(r"^eval: step: (\d+) top1: ([0-9.]+) top5: ([0-9.]+) examples: \d+$", re.M)


class E2EError(AssertionError):
    """A step failed; the message says which and why."""


@dataclass
class Target:
    """A cluster and the chart release the steps work on."""

    api: kube_client.ApiClient
    helm: str
    kubeconfig: str | None
    release: str
    namespace: str  # the release's (the operator's) namespace

    @property
    def core(self) -> kube_client.CoreV1Api:
        return kube_client.CoreV1Api(self.api)

    @property
    def custom(self) -> kube_client.CustomObjectsApi:
        return kube_client.CustomObjectsApi(self.api)

    def run_helm(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        kube = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return subprocess.run(
            [self.helm, *kube, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    # --- the chart ----------------------------------------------------------------------
    def install(
        self, values: Sequence[str] = (), strings: Sequence[str] = (), timeout: str = "5m"
    ) -> float:
        """`helm install --wait` (the operator Deployment Ready) with `--set` `values` and
        `--set-string` `strings`; returns the seconds it took."""
        sets = [arg for value in values for arg in ("--set", value)]
        sets += [arg for value in strings for arg in ("--set-string", value)]
        start = time.monotonic()
        result = self.run_helm(
            "install", self.release, str(CHART), "--namespace", self.namespace,
            "--create-namespace", "--wait", "--timeout", timeout, *sets,
        )  # fmt: skip
        took = time.monotonic() - start
        if result.returncode != 0:
            raise E2EError(f"helm install failed:\n{result.stderr.strip()}")
        return took

    def uninstall(self) -> None:
        self.run_helm("uninstall", self.release, "--namespace", self.namespace, "--wait")

    def operator_pod(self) -> kube_client.V1Pod:
        selector = (
            f"app.kubernetes.io/instance={self.release},app.kubernetes.io/name=densenet-operator"
        )
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        live = [p for p in pods if not p.metadata.deletion_timestamp]
        if len(live) != 1:
            raise E2EError(f"expected one operator pod, found {[p.metadata.name for p in live]}")
        return live[0]

    def operator_metrics(self) -> str:
        """The operator's /metrics through its Service (the API server's service proxy)."""
        selector = f"app.kubernetes.io/instance={self.release}"
        listed = self.core.list_namespaced_service(self.namespace, label_selector=selector)
        services = [
            s for s in listed.items if any(p.name == METRICS_PORT_NAME for p in s.spec.ports or [])
        ]
        if len(services) != 1:
            raise E2EError(f"expected one Service with port {METRICS_PORT_NAME}: {services}")
        return self.core.connect_get_namespaced_service_proxy_with_path(
            f"{services[0].metadata.name}:{METRICS_PORT_NAME}", self.namespace, "metrics"
        )

    # --- jobs ---------------------------------------------------------------------------
    def apply_job(self, namespace: str, job: dict[str, Any]) -> str:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
        return job["metadata"]["name"]

    def job_status(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return obj.get("status") or {}

    def wait_phase(self, namespace: str, name: str, phase: str, timeout: float) -> dict[str, Any]:
        """The job's status once it reaches `phase`; fails at once if it ends Failed instead."""

        def reached() -> dict[str, Any] | None:
            status = self.job_status(namespace, name)
            if status.get("phase") == "Failed" and phase != "Failed":
                raise E2EError(f"job {namespace}/{name} Failed: {status.get('conditions')}")
            return status if status.get("phase") == phase else None

        return eventually(
            reached, timeout, interval=1.0, what=f"job {namespace}/{name} to be {phase}"
        )

    def worker_pods(self, namespace: str, name: str) -> list[kube_client.V1Pod]:
        return job_pods(self.core, namespace, name)

    def diagnosis(self, namespace: str, name: str) -> str:
        """What a failed run leaves to read: the job's phase and conditions, its pods, and
        the operator's last log lines (best effort: each part says when it could not be read)."""
        parts = []
        try:
            status = self.job_status(namespace, name)
            conditions = [
                f"{c['type']}={c['status']} {c.get('reason', '')}: {c.get('message', '')}"
                for c in status.get("conditions", [])
            ]
            parts.append(f"job status: phase {status.get('phase')}, attempt "
                         f"{status.get('attempt')}, launchedAttempt "
                         f"{status.get('launchedAttempt')}; " + "; ".join(conditions))  # fmt: skip
            pods = [
                f"{p.metadata.name} phase {p.status.phase}"
                f"{' deleting' if p.metadata.deletion_timestamp else ''}"
                f" attempt {p.metadata.labels.get('densenet.dev/attempt')}"
                for p in self.worker_pods(namespace, name)
            ]
            parts.append(f"pods: {pods}")
            logs = self.core.read_namespaced_pod_log(
                self.operator_pod().metadata.name, self.namespace, tail_lines=40
            )
            parts.append(f"operator log:\n{logs}")
        except Exception as err:  # a diagnosis must not hide the failure it explains
            parts.append(f"(diagnosis stopped: {err})")
        return "\n".join(parts)

    def trainer_metrics(self, namespace: str, pod: kube_client.V1Pod) -> str:
        """A running trainer's /metrics through the API server's pod proxy; refuses a pod on a
        fake node (its IP leads nowhere)."""
        node = self.core.read_node(pod.spec.node_name)
        if (node.metadata.labels or {}).get(FAKE_NODE_LABEL) == "true":
            raise E2EError(f"{pod.metadata.name} runs on fake node {node.metadata.name}")
        return self.core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod.metadata.name}:{ports.TRAINER_METRICS}", namespace, "metrics"
        )


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` in a Prometheus text exposition."""
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def check_trainer_metrics(text: str, namespace: str, job: str) -> None:
    """A trainer's own series carry its job's identity and count images."""
    for name in ("densenet_global_step", "densenet_images_processed_total"):
        found = samples(text, name)
        if not found:
            raise E2EError(f"the trainer exports no {name}")
        labels = found[0][0]
        if (labels.get("job_namespace"), labels.get("job_name")) != (namespace, job):
            raise E2EError(f"{name} is labelled {labels}, not job {namespace}/{job}")


def check_operator_metrics(text: str, namespace: str, replicas: int) -> None:
    """The operator counted the job's creation, its pods and its success in `namespace`."""

    def total(name: str) -> float:
        return sum(v for labels, v in samples(text, name) if labels.get("namespace") == namespace)

    if total("densenet_operator_jobs_created_total") < 1:
        raise E2EError("densenet_operator_jobs_created_total did not count the job")
    if total("densenet_operator_pods_created_total") < replicas:
        raise E2EError(f"densenet_operator_pods_created_total counted fewer than {replicas} pods")
    if total("densenet_operator_jobs_succeeded_total") < 1:
        raise E2EError("densenet_operator_jobs_succeeded_total did not count the job")


def wait_for_trainer_metrics(target: Target, namespace: str, job: str, timeout: float) -> str:
    """worker-0's /metrics, read while it runs."""

    def read() -> str | None:
        for pod in target.worker_pods(namespace, job):
            running = pod.status.phase == "Running" and pod.status.pod_ip
            if running and pod.metadata.labels.get("densenet.dev/replica-index") == "0":
                try:
                    return target.trainer_metrics(namespace, pod)
                except ApiException:
                    return None  # the endpoint is not serving yet
        return None

    return eventually(
        read, timeout, interval=1.0, what=f"worker-0 of {namespace}/{job} serving /metrics"
    )


def job_pods(core: kube_client.CoreV1Api, namespace: str, job: str) -> list[kube_client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"{labels.JOB}={job}").items


def worker_logs(
    core: kube_client.CoreV1Api, namespace: str, job: str, replicas: int
) -> dict[int, str]:
    """Each worker's log by replica index, read as `kubectl logs` reads it (through the API
    server from the pod's node); fails unless every replica has a pod."""
    logs = {}
    for pod in job_pods(core, namespace, job):
        index = int(pod.metadata.labels["densenet.dev/replica-index"])
        logs[index] = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    if sorted(logs) != list(range(replicas)):
        raise E2EError(f"expected the logs of workers 0..{replicas - 1}, found {sorted(logs)}")
    return logs


def check_seed_logs(logs: dict[int, str], last_step: int | None) -> None:
    """Every worker printed seed 000's training lines, up to the job's last step when known."""
    for index, text in sorted(logs.items()):
        steps = [int(step) for step in SEED_LINE.findall(text)]
        if not steps:
            raise E2EError(f"worker {index} printed no seed-format step line:\n{text[-2000:]}")
        if last_step is not None and steps[-1] != last_step:
            raise E2EError(f"worker {index}'s last step line is step {steps[-1]}, not {last_step}")


def final_top1(logs: dict[int, str]) -> float:
    """The validation top-1 of the last evaluation, as worker 0 printed it."""
    found = EVAL_LINE.findall(logs[0])
    if not found:
        raise E2EError(f"worker 0 printed no evaluation line:\n{logs[0][-2000:]}")
    return float(found[-1][1])


def run_job_to_success(
    target: Target,
    namespace: str,
    job: dict[str, Any],
    timeout: float,
    *,
    after_apply: Callable[[str], None] | None = None,
    min_top1: float | None = None,
) -> dict[str, Any]:
    """Apply `job`, read a worker's metrics while it runs, wait for Succeeded, then check the
    operator's metrics, every worker's seed-format log lines up to the last step and, given
    `min_top1`, the last evaluation's top-1; returns the final status. `after_apply(name)`
    runs right after the job is created (the local tests preempt a worker there)."""
    name = target.apply_job(namespace, job)
    try:
        if after_apply is not None:
            after_apply(name)
        text = wait_for_trainer_metrics(target, namespace, name, timeout)
        check_trainer_metrics(text, namespace, name)
        status = target.wait_phase(namespace, name, "Succeeded", timeout)
    except AssertionError as err:
        raise E2EError(f"{err}\n{target.diagnosis(namespace, name)}") from err
    replicas = job["spec"].get("replicas", 1)
    check_operator_metrics(target.operator_metrics(), namespace, replicas)
    logs = worker_logs(target.core, namespace, name, replicas)
    check_seed_logs(logs, (status.get("progress") or {}).get("totalSteps"))
    if min_top1 is not None and (top1 := final_top1(logs)) < min_top1:
        raise E2EError(f"validation top-1 {top1:.3f} is below {min_top1}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.e2e", description=__doc__)
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--helm", default="helm")
    parser.add_argument("--release", default="densenet-operator")
    parser.add_argument("--namespace", default="densenet-system")
    parser.add_argument("--jobs-namespace", default="default")
    parser.add_argument("--job", type=Path, default=REPO_ROOT / "examples" / "cpu-smoke.yaml")
    parser.add_argument("--set", action="append", default=[], dest="values")
    parser.add_argument(
        "--cpu-request", help="the workers' CPU request (a small node cannot fit the example's)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per step")
    parser.add_argument(
        "--min-top1", type=float, default=None, help="fail below this final validation top-1"
    )
    args = parser.parse_args(argv)

    kube_config.load_kube_config(config_file=args.kubeconfig)
    target = Target(
        kube_client.ApiClient(), args.helm, args.kubeconfig, args.release, args.namespace
    )
    try:
        took = target.install(args.values)
        print(f"e2e: helm install to Ready: {took:.1f} s", flush=True)
        job = yaml.safe_load(args.job.read_text())
        if args.cpu_request:
            resources = job["spec"].setdefault("template", {}).setdefault("resources", {})
            resources.setdefault("requests", {})["cpu"] = args.cpu_request
        status = run_job_to_success(
            target, args.jobs_namespace, job, args.timeout, min_top1=args.min_top1
        )
    except AssertionError as err:  # E2EError, or a wait that timed out
        print(f"e2e: FAILED: {err}", file=sys.stderr)
        return 1
    print(f"e2e: {job['metadata']['name']} Succeeded; progress {status.get('progress')}")
    print("e2e: trainer and operator metrics and every worker's log checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
