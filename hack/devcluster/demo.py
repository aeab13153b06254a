"""`make demo`: the product end to end on this machine, no GPU needed.

Brings up the local control plane and its real node (containerd and the kubelet), loads the
images `make images` built into the node, `helm install`s the chart (the operator runs as a pod
from densenet-operator:dev under its own ServiceAccount), writes scikit-learn's digits as a
folder dataset, applies examples/cpu-digits.yaml (2 CPU workers from densenet-trainer:dev) and
prints the job's progress from its status until it succeeds, then the validation top-1 and
where the logs, checkpoints and metrics are. Tears everything down unless --keep; Ctrl-C tears
down too. Needs root (the node) and a Docker daemon holding the images (`make demo` sees to
both).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from densenet_contract import image, labels
from devcluster import cluster, realnode
from devcluster.config import REAL_NODE_BRIDGE, REAL_NODE_LABEL, REPO_ROOT, ClusterPaths
from devdata.digits import write_dataset

DEMO_ROOT = Path("/var/tmp/densenet-demo")  # behind examples/cpu-digits.yaml's claims
# The claims examples/cpu-digits.yaml names: (claim, directory under DEMO_ROOT, access mode).
CLAIMS = (
    ("densenet-demo-digits", "digits", "ReadOnlyMany"),
    ("densenet-demo-checkpoints", "checkpoints", "ReadWriteMany"),
)
EXAMPLE = REPO_ROOT / "examples" / "cpu-digits.yaml"
CHART = REPO_ROOT / "deploy" / "helm" / "densenet-operator"
RELEASE, OPERATOR_NS, JOB_NS = "densenet-operator", "densenet-system", "default"
GROUP, VERSION, PLURAL = "densenet.dev", "v1alpha1", "densenettrainingjobs"
# The images `make images` built (its IMAGE_TAG), which the node runs: never pulled.
IMAGE_TAG = os.environ.get("IMAGE_TAG", "dev")
OPERATOR_IMAGE, TRAINER_IMAGE = f"densenet-operator:{IMAGE_TAG}", f"densenet-trainer:{IMAGE_TAG}"
EVAL_LINE = re.compile(r"^eval: step: (\d+) top1: ([0-9.]+) top5: ([0-9.]+)", re.M)
BAR = 30
# Running with no step for this long: TensorFlow's start-up on 2 cores takes about a minute, so
# past this the workers are most likely not reaching each other.
NO_STEP_HINT_SECONDS = 180


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def detail(message: str) -> None:
    print(f"    {message}", flush=True)


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(status: dict[str, Any]) -> str:
    phase = status.get("phase", "Pending")
    p = status.get("progress") or {}
    if "step" not in p:
        return f"{phase:<12} waiting for the first step"
    percent = p.get("percent", 0.0)
    filled = round(BAR * percent / 100)
    total = p.get("totalSteps", "?")
    eta = p.get("estimatedRemainingSeconds")
    return (
        f"{phase:<12} [{'#' * filled}{'.' * (BAR - filled)}] {percent:5.1f}% "
        f"step {p['step']}/{total}  {p.get('imagesPerSecond', 0):6.1f} img/s  "
        f"loss {p.get('loss', 0):.4f}  ETA {clock(eta) if eta is not None else '?'}"
    )


class Demo:
    def __init__(self, paths: ClusterPaths) -> None:
        self.paths = paths
        self.kubeconfig: Path | None = None
        self.job_name = ""

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.paths.bin_dir / "helm"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    def up(self) -> None:
        say("local control plane and its node (a first run builds them: ~15 min on 2 cores)")
        self.connect(cluster.up(self.paths, log=detail, with_node=True))
        say(f"loading {OPERATOR_IMAGE} and {TRAINER_IMAGE} into the node's containerd")
        start = time.monotonic()
        try:
            loaded = realnode.load_images(self.paths, [OPERATOR_IMAGE, TRAINER_IMAGE])
        except OSError as err:
            raise RuntimeError(f"{err} (build them with `make images`)") from err
        done = f"in {time.monotonic() - start:.0f}s" if loaded else "(already there)"
        print(f"    {', '.join(loaded) or 'both'} {done}")

    def connect(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        api = kube_config.new_client_from_config(str(kubeconfig))
        self.core = kube_client.CoreV1Api(api)
        self.custom = kube_client.CustomObjectsApi(api)

    def dataset(self) -> None:
        digits = DEMO_ROOT / "digits"
        if not (digits / "val").is_dir():
            say(f"writing scikit-learn's digits as a folder dataset to {digits}")
            train, val = write_dataset(digits)
            print(f"    {train} training and {val} validation images, 10 classes")
        checkpoints = DEMO_ROOT / "checkpoints"
        shutil.rmtree(checkpoints, ignore_errors=True)  # a second run trains from step 0
        checkpoints.mkdir(parents=True)
        os.chown(checkpoints, image.TRAINER_UID, image.TRAINER_GID)  # the image's user writes

    def storage(self) -> None:
        """As the cluster admin: a PersistentVolume for the digits and one for checkpoints,
        each bound in advance to the claim examples/cpu-digits.yaml names, so the job needs no
        hostPath, which the chart's default policy refuses a job author."""
        say("as the admin: PersistentVolumes and claims for the data and the checkpoints")
        for claim, directory, mode in CLAIMS:
            volume = {
                "metadata": {"name": f"{claim}-{JOB_NS}"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": [mode],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "claimRef": {"namespace": JOB_NS, "name": claim},
                    "hostPath": {"path": str(DEMO_ROOT / directory), "type": "Directory"},
                },
            }
            request = {
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": [mode],
                    "storageClassName": "",
                    "volumeName": volume["metadata"]["name"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
            for create, body in (
                (self.core.create_persistent_volume, volume),
                (partial(self.core.create_namespaced_persistent_volume_claim, JOB_NS), request),
            ):
                try:
                    create(body)
                except ApiException as err:
                    if err.status != 409:  # there from an earlier run
                        raise
            print(f"    {claim} -> {DEMO_ROOT / directory} ({mode})")

    def install(self) -> None:
        say(f"helm install {RELEASE} (the operator runs as a pod under its ServiceAccount)")
        start = time.monotonic()
        label = REAL_NODE_LABEL.replace(".", "\\.")  # helm's --set path syntax
        result = self.helm(
            "upgrade", "--install", RELEASE, str(CHART), "--namespace", OPERATOR_NS,
            "--create-namespace", "--wait", "--timeout", "5m",
            "--set", f"image.tag={IMAGE_TAG}", "--set", "image.pullPolicy=Never",
            "--set", f"operator.trainerImage={TRAINER_IMAGE}",
            "--set-string", f"nodeSelector.{label}=true",
            "--set", f"tolerations[0].key={REAL_NODE_LABEL}",
            "--set", "tolerations[0].operator=Exists",
            "--set", "tolerations[0].effect=NoSchedule",
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"helm install failed: {result.stderr.strip()}")
        print(f"    operator Ready after {time.monotonic() - start:.1f}s")

    def run_job(self) -> dict[str, Any]:
        job = yaml.safe_load(EXAMPLE.read_text())
        self.job_name = job["metadata"]["name"]
        self.delete_job()
        say(f"kubectl apply -f {EXAMPLE.relative_to(REPO_ROOT)}  (2 CPU workers)")
        self.custom.create_namespaced_custom_object(GROUP, VERSION, JOB_NS, PLURAL, job)
        start, last, running_since, hinted = time.monotonic(), "", None, False
        while True:
            obj = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, JOB_NS, PLURAL, self.job_name
            )
            status = obj.get("status") or {}
            line = progress_line(status)
            if line != last:
                print(f"    [{clock(time.monotonic() - start):>6}] {line}", flush=True)
                last = line
            if status.get("phase") == "Running" and running_since is None:
                running_since = time.monotonic()
            stuck = running_since is not None and "step" not in (status.get("progress") or {})
            if stuck and not hinted and time.monotonic() - running_since > NO_STEP_HINT_SECONDS:
                hinted = True
                self.no_progress_hint(time.monotonic() - running_since)
            if status.get("phase") == "Succeeded":
                return status
            if status.get("phase") == "Failed":
                failed = [c for c in status.get("conditions", []) if c["type"] == "Failed"]
                raise RuntimeError(f"the job failed: {failed[0]['message'] if failed else status}")
            time.sleep(2)

    def no_progress_hint(self, seconds: float) -> None:
        """Say why a Running job may show no step, with what its chief last printed."""
        pod = f"{self.job_name}-worker-0"
        try:
            tail = self.core.read_namespaced_pod_log(pod, JOB_NS, tail_lines=1).strip()
        except ApiException as exc:
            tail = f"(its log cannot be read: {exc.reason})"
        say(
            f"no training step {clock(seconds)} after the job started Running: the workers may "
            "not reach each other (a FORWARD policy of DROP, as Docker sets, on the pod bridge "
            f"{REAL_NODE_BRIDGE}?). {pod} last printed: {tail or '(nothing)'}"
        )

    def report(self, status: dict[str, Any]) -> None:
        chief = f"{self.job_name}-worker-0"
        log = self.core.read_namespaced_pod_log(chief, JOB_NS)
        found = EVAL_LINE.findall(log)
        p = status.get("progress") or {}
        say("done")
        if found:
            step, top1, top5 = found[-1]
            print(f"    validation top-1 {float(top1):.1%}, top-5 {float(top5):.1%} at step {step}")
            print("    (10 classes: chance is 10 %)")
        print(
            f"    last read: {p.get('imagesPerSecond', 0):.1f} img/s, loss {p.get('loss', 0):.4f}"
        )
        restarts, preemptions = status.get("restarts", 0), status.get("preemptions", 0)
        print(f"    restarts: {restarts}, preemptions: {preemptions}")
        print('  where things are (with --keep; first: eval "$(.venv/bin/devcluster env)"):')
        print(f"    logs         kubectl logs -n {JOB_NS} {chief}   (and -worker-1)")
        print(
            f"    status       kubectl get dntj -n {JOB_NS}; kubectl describe dntj {self.job_name}"
        )
        print(f"    checkpoints  {DEMO_ROOT / 'checkpoints' / self.job_name}  (and saved_model/)")
        print(
            f"    metrics      kubectl get --raw /api/v1/namespaces/{OPERATOR_NS}/services/"
            f"{RELEASE}:http-metrics/proxy/metrics   (the operator's; trainers serve :9410)"
        )

    def delete_job(self) -> None:
        if not self.job_name:
            return
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, JOB_NS, PLURAL, self.job_name
            )
        except ApiException as err:
            if err.status != 404:
                raise
            return
        selector = f"{labels.JOB}={self.job_name}"
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline
            and self.core.list_namespaced_pod(JOB_NS, label_selector=selector).items
        ):
            time.sleep(1)

    def remove_product(self) -> None:
        """The job (its pods gone) and the chart; the cluster stays."""
        try:
            self.delete_job()
        except ApiException as err:
            print(f"    could not delete the job: {err.reason}")
        self.helm("uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait")

    def down(self) -> None:
        say("tearing down (the job, the chart, the cluster)")
        if self.kubeconfig is not None:
            self.remove_product()
        cluster.down(self.paths, log=detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the cluster, chart and job up")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the dataset writer imports TF
    if os.geteuid() != 0:
        print("demo: error: the node needs root (containerd, mounts, the pod bridge): run "
              "`make demo` as root", file=sys.stderr)  # fmt: skip
        return 2
    demo = Demo(ClusterPaths.default())
    code = 1
    try:
        demo.up()
        demo.dataset()
        demo.storage()
        demo.install()
        demo.report(demo.run_job())
        code = 0
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        code = 130
    except RuntimeError as err:
        print(f"demo: error: {err}", file=sys.stderr)
    finally:
        if args.keep and code == 0:
            say("kept running: `make cluster-down` stops it")
        else:
            demo.down()
    return code


if __name__ == "__main__":
    sys.exit(main())
