"""Where a restart's time goes: SIGKILL worker 1 of a real 2-worker CPU job (the local cluster's
real node, trainers from `densenet-trainer:dev`, the real `densenet-operator run`) --kills
times and print, per kill, the seconds from the kill until each stage, and the medians:

  detect    the operator counted the restart (status.restarts moved)
  teardown  no pod of the killed attempt is left (survivors stopped, 1 s grace)
  pods      both new pods Running (the kubelet started their containers)
  started   the new chief logged "started: rank 0 of 2" (Python and TensorFlow loaded, both
            workers joined the TF cluster)
  restore   the new chief logged "resumed from ... at step N" (model built, checkpoint
            restored)
  step      the new chief logged its first step (the training function traced and run once)

and the steps lost (the step reached before the kill minus the step resumed from; at most one
checkpoint interval, --checkpoint-every).

    .venv/bin/python benchmarks/recovery.py [--kills 5]     # ~10 min on 2 cores, needs root

Uses the local cluster and its real node (`make cluster-up DEVCLUSTER_ARGS="--with node"`), or
starts them and stops what it started at the end; the trainer image comes from the Docker
daemon (`make images`; IMAGE_TAG, default dev). The job trains synthetic 32x32 images, batch
8, one step per host loop, a line per step, with `backoffLimit: 1000`. The operator's restart
backoff is --backoff (default 1 s here; the operator's own default, 10 s doubled per restart, is
added to "pods" when it applies).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from operator_scale import wait_established

from densenet_contract import image, labels
from densenet_operator import schema
from devcluster import cluster as devcluster
from devcluster import realnode
from devcluster.config import REAL_NODE_LABEL, ClusterPaths
from devcluster.realnode import trainer_pid

REPO = Path(__file__).resolve().parents[1]
STAGES = ("detect", "teardown", "pods", "started", "restore", "step")
STEP = re.compile(r"^step:\s*(\d+)\s", re.M)
RESUMED = re.compile(r"^resumed from \S+ at step (\d+)", re.M)
STARTED = re.compile(r"^started: rank 0 ", re.M)
JOB = "recovery"
IMAGE = f"densenet-trainer:{os.environ.get('IMAGE_TAG', 'dev')}"


def job_manifest(checkpoints: Path, every: int) -> dict:
    return {
        "apiVersion": schema.API_VERSION,
        "kind": schema.KIND,
        "metadata": {"name": JOB},
        "spec": {
            "replicas": 2,
            "dataset": {"format": "synthetic", "numClasses": 10, "imageSize": 32},
            "training": {
                "batchSize": 8, "maxSteps": 1_000_000, "iterationsPerLoop": 1, "displayEvery": 1,
            },
            "runPolicy": {"backoffLimit": 1000},
            "checkpoint": {
                "everySteps": every, "volume": {"hostPath": {"path": str(checkpoints)}},
            },
            "image": IMAGE,
            "scheduling": {
                "nodeSelector": {REAL_NODE_LABEL: "true"},
                "tolerations": [{"key": REAL_NODE_LABEL, "operator": "Exists"}],
            },
        },
    }  # fmt: skip


@dataclass
class Snapshot:
    """One look, after a kill: the job's pods, the uids of the killed attempt's, the chief's
    log file and how many resumes it had before the kill."""

    pods: list[kube_client.V1Pod]
    old: set[str]
    text: str
    resumes: int
    starts: int

    @property
    def new(self) -> list[kube_client.V1Pod]:
        return [p for p in self.pods if p.metadata.uid not in self.old]

    def since_resume(self) -> str | None:
        """The log from the new attempt's "resumed from" line on, once it is there."""
        if len(RESUMED.findall(self.text)) <= self.resumes:
            return None
        return self.text[self.text.rindex("resumed from") :]


class Watch:
    """What the clock reads for one kill: the API and the chief's log file."""

    def __init__(self, core, custom, namespace: str, chief_log: Path) -> None:
        self.core, self.custom, self.namespace = core, custom, namespace
        self.chief_log = chief_log

    def status(self) -> dict:
        obj = self.custom.get_namespaced_custom_object(
            schema.GROUP, schema.VERSION, self.namespace, schema.PLURAL, JOB
        )
        return obj.get("status") or {}

    def pods(self) -> list[kube_client.V1Pod]:
        selector = f"{labels.JOB}={JOB}"
        return self.core.list_namespaced_pod(self.namespace, label_selector=selector).items

    def log_text(self) -> str:
        return self.chief_log.read_text() if self.chief_log.exists() else ""

    def reached(self, stage: str, snap: Snapshot, restarts: int) -> bool:
        if stage == "detect":
            return self.status().get("restarts", 0) > restarts
        if stage == "teardown":
            return not any(p.metadata.uid in snap.old for p in snap.pods)
        if stage == "pods":
            return len(snap.new) == 2 and all(p.status.phase == "Running" for p in snap.new)
        if stage == "started":
            return len(STARTED.findall(snap.text)) > snap.starts
        tail = snap.since_resume()
        if stage == "restore":
            return tail is not None
        return tail is not None and STEP.search(tail) is not None  # "step"

    def measure_kill(self, restarts: int) -> tuple[dict[str, float], int]:
        """SIGKILL worker 1, then time every stage; returns them and the steps lost."""
        before = self.log_text()
        reached = max(map(int, STEP.findall(before)), default=0)
        resumes, starts = len(RESUMED.findall(before)), len(STARTED.findall(before))
        old = {p.metadata.uid for p in self.pods()}
        pid = trainer_pid(JOB, 1)
        if pid is None:
            sys.exit("recovery: worker 1's trainer process is not running")
        os.kill(pid, signal.SIGKILL)
        start = time.monotonic()
        seen: dict[str, float] = {}
        resumed_at = 0
        while len(seen) < len(STAGES):
            if time.monotonic() - start > 600:
                sys.exit(f"recovery: stuck after {sorted(seen)} (600 s)")
            now = time.monotonic() - start
            snap = Snapshot(self.pods(), old, self.log_text(), resumes, starts)
            for stage in STAGES:
                if stage not in seen and self.reached(stage, snap, restarts):
                    seen[stage] = now
            found = RESUMED.findall(snap.text)
            if "restore" in seen and not resumed_at:
                resumed_at = int(found[-1])
            time.sleep(0.1)
        return seen, reached - resumed_at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--steps-between", type=int, default=5, help="new steps before a kill")
    parser.add_argument(
        "--backoff", type=float, default=1.0,
        help="the operator's restart backoff (--backoff-seconds, --backoff-max); its default "
        "is 10 s doubled per restart: a policy, which this benchmark leaves out by default",
    )  # fmt: skip
    args = parser.parse_args()

    paths = ClusterPaths.default()
    was_running = all(healthy for _, _, healthy in devcluster.status(paths))
    node_was_running = devcluster.is_healthy(paths, realnode.components(paths).kubelet)
    kubeconfig = devcluster.up(paths, log=lambda _m: None, with_node=True)
    realnode.load_images(paths, [IMAGE])
    kube_config.load_kube_config(str(kubeconfig))
    core, custom = kube_client.CoreV1Api(), kube_client.CustomObjectsApi()
    subprocess.run(
        [str(paths.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), "apply", "-f",
         str(REPO / "crds")], check=True, capture_output=True,
    )  # fmt: skip
    wait_established(f"{schema.PLURAL}.{schema.GROUP}")
    namespace = f"bench-recovery-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    work = Path(tempfile.mkdtemp(prefix="recovery-"))
    work.chmod(0o755)  # the image's user reaches the checkpoints through it
    checkpoints = work / "ckpt"
    checkpoints.mkdir()
    os.chown(checkpoints, image.TRAINER_UID, image.TRAINER_GID)  # the image's user writes
    operator_log = work / "operator.log"
    operator = subprocess.Popen(
        [sys.executable, "-m", "densenet_operator.cli", "run", "-n", namespace,
         "--liveness", "", "--metrics-port", "0", "--progress-interval", "2",
         "--backoff-seconds", str(args.backoff), "--backoff-max", str(args.backoff)],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=operator_log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    watch = Watch(
        core, custom, namespace, checkpoints / JOB / "densenet121.log",
    )  # fmt: skip
    rows: list[tuple[dict[str, float], int]] = []
    try:
        custom.create_namespaced_custom_object(
            schema.GROUP, schema.VERSION, namespace, schema.PLURAL,
            job_manifest(checkpoints, args.checkpoint_every),
        )  # fmt: skip
        print(f"kill -> stage, seconds (log: {operator_log})")
        print(f"  {'kill':>4} " + " ".join(f"{s:>8}" for s in STAGES) + "  steps lost")
        for kill in range(args.kills):
            # Past a checkpoint of this attempt, and a few steps more, before the next kill.
            deadline = time.monotonic() + 600
            while True:
                text = watch.log_text()
                tail = text[text.rindex("started: rank 0") :] if "started: rank 0" in text else ""
                saved = tail.rfind("checkpoint: ")
                if saved >= 0 and len(STEP.findall(tail[saved:])) >= args.steps_between:
                    break
                if time.monotonic() > deadline:
                    sys.exit("recovery: the job made no progress in 600 s")
                time.sleep(0.5)
            seen, lost = watch.measure_kill(restarts=kill)
            rows.append((seen, lost))
            times = " ".join(f"{seen[s]:8.1f}" for s in STAGES)
            print(f"  {kill + 1:>4} {times}  {lost:>10}", flush=True)
    finally:
        operator.terminate()
        operator.wait(30)
        core.delete_namespace(namespace)
        if not was_running:
            devcluster.down(paths, log=lambda _m: None)
        elif not node_was_running:
            devcluster.stop_node(paths)
    medians = " ".join(f"{statistics.median(r[0][s] for r in rows):8.1f}" for s in STAGES)
    lost = statistics.median(r[1] for r in rows)
    print(f"  {'p50':>4} {medians}  {lost:>10}")
    print("(each column is the time from the kill: the stages' own durations are differences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
