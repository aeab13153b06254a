"""A real `densenet-operator run` subprocess for one test namespace, and helpers to read jobs.

The operator authenticates as the Helm chart's ServiceAccount with the chart's RBAC
(tests/operator/account.py), not as the cluster admin. Short intervals (resync, backoff,
pending timeout) keep the tests quick; the behaviour they exercise is the same as with the
defaults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from densenet_operator import schema
from tests.conftest import LocalCluster
from tests.operator.account import chart_kubeconfig, fullname
from tests.operator.jobs import JobBuilder
from tests.polling import eventually
from tests.real_node import NODE_SELECTOR, TOLERATION, TRAINER_IMAGE

FAST = (
    "--resync-interval", "1", "--backoff-seconds", "1", "--pending-timeout", "3",
    "--progress-interval", "2", "--force-delete-after", "20", "--lease-duration", "3",
    "--cache-seconds", "1",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    def __init__(
        self,
        cluster: LocalCluster,
        namespace: str,
        log_dir: Path,
        *args: str,
        chart_values: tuple[str, ...] = (),
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.args = args
        self.log = log_dir / "operator.log"
        self.kubeconfig = chart_kubeconfig(cluster, namespace, log_dir, chart_values)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        command = [
            sys.executable, "-m", "densenet_operator.cli", "run", "-n", self.namespace,
            "--liveness", "", "--metrics-port", str(self.port), *FAST,
            "--leader-election-namespace", self.namespace,
            "--admission-policy", fullname(self.namespace),
            "--network-policy", "--metrics-from-namespace", self.namespace, *self.args,
        ]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        eventually(self._serving, timeout=30, what="the operator's /metrics")
        return self

    def _serving(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        try:
            self.metrics()
        except OSError:
            return False
        return True

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def sample(self, name: str) -> float:
        """The sum of metric ``name``'s samples (every label set) on this operator's /metrics."""
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in self.metrics().splitlines()
            if line.startswith((f"{name} ", f"{name}{{"))
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
                # Kubernetes would wait out the pod's grace period and SIGKILL it: a rollout or
                # `helm uninstall` that hangs. It once waited on a stop flag nothing set.
                raise AssertionError(f"the operator ignored SIGTERM for 15 s: {self.log}") from None


class Jobs:
    """DenseNetTrainingJobs and their pods in one namespace."""

    def __init__(self, api_client: kube_client.ApiClient, namespace: str) -> None:
        self.custom = kube_client.CustomObjectsApi(api_client)
        self.core = kube_client.CoreV1Api(api_client)
        self.namespace = namespace

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(
            schema.GROUP, schema.VERSION, self.namespace, schema.PLURAL, obj
        )

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            schema.GROUP, schema.VERSION, self.namespace, schema.PLURAL, name
        )

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            schema.GROUP, schema.VERSION, self.namespace, schema.PLURAL, name, patch
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            schema.GROUP, schema.VERSION, self.namespace, schema.PLURAL, name
        )

    def gone(self, name: str) -> bool:
        """Whether job ``name`` is deleted (404), for eventually()."""
        try:
            self.get(name)
        except ApiException as err:
            return err.status == 404
        return False

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait_phase(self, name: str, phase: str, timeout: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("phase") == phase else None

        return eventually(reached, timeout=timeout, interval=0.5, what=f"{name} {phase}")

    def pods(self, name: str) -> list[kube_client.V1Pod]:
        selector = f"densenet.dev/job-name={name}"
        return self.core.list_namespaced_pod(self.namespace, label_selector=selector).items

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for condition in self.status(name).get("conditions", []):
            if condition["type"] == kind:
                return condition
        return None


# A stand-in for densenet-train, first on PATH in a pod from the trainer image: exits with
# $FAKE_EXIT after $FAKE_SLEEP seconds (75 on SIGTERM, as the trainer does); with $FAKE_ONCE it
# fails only on its first run.
FAKE_TRAINER = """#!/bin/sh
trap 'echo "fake trainer: SIGTERM"; exit 75' TERM
echo "fake trainer $HOSTNAME: $*"
marker="$FAKE_DIR/$HOSTNAME.ran"
if [ -n "$FAKE_ONCE" ] && [ -e "$marker" ]; then FAKE_EXIT=0; fi
touch "$marker"
sleep "${FAKE_SLEEP:-0}" & wait $!
exit "${FAKE_EXIT:-0}"
"""


# Where the pods see the test's directory (a hostPath volume).
FAKE_MOUNT = "/fake-trainer"


def fake_trainer(directory: Path, **env: str | int) -> dict[str, list[dict[str, Any]]]:
    """spec.template env, volumes and volumeMounts that put the stand-in first on PATH in the
    trainer container (``directory``, from the fake_dir fixture, is mounted at FAKE_MOUNT)."""
    script = directory / "densenet-train"
    script.write_text(FAKE_TRAINER)
    script.chmod(0o755)
    base = {"PATH": f"{FAKE_MOUNT}:/usr/bin:/bin", "FAKE_DIR": FAKE_MOUNT}
    return {
        "env": [{"name": k, "value": str(v)} for k, v in {**base, **env}.items()],
        "volumes": [{"name": "fake-trainer", "hostPath": {"path": str(directory)}}],
        "volumeMounts": [{"name": "fake-trainer", "mountPath": FAKE_MOUNT}],
    }


def on_node(name: str, directory: Path, replicas: int = 2, **env: str | int) -> JobBuilder:
    """A job whose pods run the stand-in trainer in containers from the trainer image on the
    real node (it sleeps FAKE_SLEEP, exits FAKE_EXIT, exits 75 on SIGTERM)."""
    return real_node_job(JobBuilder(name).replicas(replicas)).set(
        "spec.template", fake_trainer(directory, **env)
    )


def real_node_job(builder: JobBuilder) -> JobBuilder:
    """`builder` on the real node, from the trainer image `make images` built."""
    return builder.set("spec.image", TRAINER_IMAGE).set(
        "spec.scheduling", {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]}
    )
