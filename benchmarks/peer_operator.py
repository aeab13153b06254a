"""Us against Kubeflow's training-operator (its TFJob controller) on one control plane, in one
run: N DenseNetTrainingJobs and N TFJobs of P workers each, with the same pods (our renderer's
trainer container, node selector and tolerations, in the TFJob's pod template), on kwok nodes.
For each side: p50 and p99 from apply until all of a job's pods exist and until all run, the
controller's peak RSS and CPU seconds (from /proc), and ours / theirs.

    .venv/bin/python benchmarks/peer_operator.py                  # 100 x 4 each, 3 runs
    .venv/bin/python benchmarks/peer_operator.py --jobs 250       # 1,000 pods each
    .venv/bin/python benchmarks/peer_operator.py --jobs 2 --runs 1   # the CI smoke

The sides take turns (ours first in odd runs, theirs first in even ones), each in its own
namespace with only its own controller running, so neither pays for the other's watches.
Both controllers watch only their namespace and use the admin kubeconfig. The training-operator
(hack/versions.env TRAINING_OPERATOR_VERSION, built by `make binaries`) runs with
`--enable-scheme=tfjob` and its defaults otherwise (1 controller thread, as its manifests ship
it). Its validating webhook is not installed: the API server could only reach it through a
Service, and none of the figures includes admission. Its webhook server still listens on
:9443 (the binary has no flag for the address), and nothing dials it. Its certificate rotator
needs the Secret it fills and the files it expects mounted: this script makes the first and
copies the Secret's certificate into /tmp/k8s-webhook-server/serving-certs, as the kubelet
would mount it.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kubernetes.client.rest import ApiException
from operator_scale import (
    JOB_NAME_LABEL,
    Bench,
    Figures,
    job,
    percentile,
    stop_process,
    wait_established,
)

from densenet_contract import env as contract_env
from densenet_operator import DEFAULT_TRAINER_IMAGE, schema
from densenet_operator.job import Job
from densenet_operator.render import render
from densenet_operator.render.accelerators.base import TF_CLUSTER_VOLUME
from devcluster import cluster as devcluster
from devcluster.config import cache_root

TFJOB_GROUP, TFJOB_VERSION, TFJOB_PLURAL = "kubeflow.org", "v1", "tfjobs"
TFJOB_NAME_LABEL = "training.kubeflow.org/job-name"
# Where the training-operator looks (its pkg/cert: MY_POD_NAMESPACE, the Secret, the files).
PEER_NAMESPACE = "kubeflow"
PEER_SECRET = "training-operator-webhook-cert"
PEER_CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
SIDES = ("ours", "theirs")


def peer_paths() -> tuple[Path, Path]:
    """The training-operator binary and its TFJob CRD, as `make binaries` caches them."""
    version = devcluster.read_versions()["TRAINING_OPERATOR_VERSION"]
    binary = cache_root() / "bin" / f"training-operator.v1-{version}" / "training-operator.v1"
    crd = cache_root() / f"training-operator-{version}" / "kubeflow.org_tfjobs.yaml"
    for path in (binary, crd):
        if not path.exists():
            sys.exit(f"peer_operator: {path} is missing: run `make binaries` first")
    return binary, crd


def tfjob(name: str, namespace: str, pods: int, selector: dict[str, str]) -> dict:
    """A TFJob of ``pods`` workers whose pods are ours: our renderer's first pod, less what
    only our operator uses (the TF cluster file: the TFJob controller sets TF_CONFIG itself)."""
    ours = job(name, pods, selector)
    ours["metadata"]["namespace"] = namespace
    (pod, *_) = render(Job.from_object(schema.apply(ours)), DEFAULT_TRAINER_IMAGE).pods
    spec = {k: v for k, v in pod["spec"].items() if k not in {"hostname", "subdomain"}}
    spec.pop("restartPolicy")
    (container,) = spec["containers"]
    ours_only = {
        contract_env.TF_CLUSTER_FILE, contract_env.TF_TASK_TYPE, contract_env.TF_TASK_INDEX
    }  # fmt: skip
    container["name"] = "tensorflow"  # the container the TFJob controller configures
    container["env"] = [e for e in container["env"] if e["name"] not in ours_only]
    container["volumeMounts"] = [
        m for m in container["volumeMounts"] if m["name"] != TF_CLUSTER_VOLUME
    ]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != TF_CLUSTER_VOLUME]
    return {
        "apiVersion": f"{TFJOB_GROUP}/{TFJOB_VERSION}",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {
            "runPolicy": {"cleanPodPolicy": "None"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": pods,
                    "restartPolicy": "ExitCode",  # pods restartPolicy Never, as ours
                    "template": {"spec": spec},
                }
            },
        },
    }


def start_ours(bench: Bench, namespace: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "densenet_operator.cli", "run", "-n", namespace,
         "--liveness", "", "--metrics-port", "0"],
        env=bench.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def write_certs(data: dict[str, str]) -> None:
    """The Secret's pair as a mount would give it: the rotator starts the webhook server as
    soon as both files exist, so each appears whole (renamed into place), the key first."""
    PEER_CERT_DIR.mkdir(parents=True, exist_ok=True)
    for key in ("tls.key", "tls.crt"):
        partial = PEER_CERT_DIR / f".{key}.partial"
        partial.write_bytes(base64.b64decode(data[key]))
        partial.replace(PEER_CERT_DIR / key)


def start_theirs(bench: Bench, namespace: str, binary: Path, log: Path) -> subprocess.Popen:
    """The training-operator, its certificates bootstrapped as in its own Deployment."""
    core = bench.core
    try:
        core.create_namespace({"metadata": {"name": PEER_NAMESPACE}})
        core.create_namespaced_secret(PEER_NAMESPACE, {"metadata": {"name": PEER_SECRET}})
    except ApiException as e:
        if e.status != 409:
            raise
    shutil.rmtree(PEER_CERT_DIR, ignore_errors=True)  # an earlier run's pair is not this Secret's
    env = {**bench.env(), "MY_POD_NAMESPACE": PEER_NAMESPACE}
    process = subprocess.Popen(
        [str(binary), "--enable-scheme=tfjob", f"--namespace={namespace}",
         "--metrics-bind-address=0", "--health-probe-bind-address=0"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    # The rotator fills the Secret, then waits (backing off) for the files a mount would give.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = core.read_namespaced_secret(PEER_SECRET, PEER_NAMESPACE).data or {}
        if "tls.crt" in data and "tls.key" in data:
            write_certs(data)
            return process
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop_process(process, "the training-operator")
    sys.exit(f"peer_operator: the training-operator did not set up its certificates; see {log}")


def run_side(bench: Bench, side: str, args: argparse.Namespace, binary: Path) -> Figures:
    namespace = f"peer-{side}-{bench.run_id}"
    bench.core.create_namespace({"metadata": {"name": namespace}})
    if side == "ours":
        controller = start_ours(bench, namespace)
        label = JOB_NAME_LABEL

        def create(name: str) -> None:
            bench.custom.create_namespaced_custom_object(
                schema.GROUP, schema.VERSION, namespace, schema.PLURAL,
                job(name, args.pods_per_job, bench.selector),
            )  # fmt: skip

    else:
        controller = start_theirs(bench, namespace, binary, args.peer_log)
        label = TFJOB_NAME_LABEL

        def create(name: str) -> None:
            bench.custom.create_namespaced_custom_object(
                TFJOB_GROUP, TFJOB_VERSION, namespace, TFJOB_PLURAL,
                tfjob(name, namespace, args.pods_per_job, bench.selector),
            )  # fmt: skip

    try:
        return bench.measure(
            namespace, controller, create, jobs=args.jobs, pods_per_job=args.pods_per_job,
            timeout=args.timeout, owner_label=label,
        )  # fmt: skip
    finally:
        stop_process(controller, f"{side} controller")
        bench.delete_namespace(namespace, args.jobs * args.pods_per_job)


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    return percentile(values, 99) if values else float("nan")


def summary(figures: Figures) -> dict[str, float]:
    return {
        "exist p50": p50(figures.exist),
        "exist p99": p99(figures.exist),
        "running p50": p50(figures.running),
        "running p99": p99(figures.running),
        "RSS MB": figures.rss_peak,
        "CPU s": figures.cpu,
        "CPU run s": figures.cpu_run,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per side and run")
    parser.add_argument("--pods-per-job", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds for all Running")
    parser.add_argument(
        "--peer-log", type=Path, default=Path("/tmp/peer-training-operator.log"),
        help="the training-operator's log",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    binary, crd = peer_paths()

    bench = Bench.start(2 * args.jobs * args.pods_per_job)
    bench.kubectl("apply", "--server-side", "-f", str(crd))
    wait_established(f"{TFJOB_PLURAL}.{TFJOB_GROUP}")
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    complete = True
    try:
        for run in range(args.runs):
            order = SIDES if run % 2 == 0 else SIDES[::-1]
            for side in order:
                figures = run_side(bench, side, args, binary)
                complete &= len(figures.running) == args.jobs
                results[side].append(summary(figures))
                print(f"run {run + 1}, {side}: {args.jobs} jobs x {args.pods_per_job} pods")
                print("\n".join(figures.lines(args.timeout)), flush=True)
    finally:
        bench.stop()

    keys = list(results["ours"][0])
    print(f"\nmedians of {args.runs} run(s), {args.jobs} jobs x {args.pods_per_job} pods per side")
    print(f"  {'':<12} {'ours':>9} {'theirs':>9} {'ours/theirs':>12}")
    medians = {side: {k: statistics.median(r[k] for r in results[side]) for k in keys}
               for side in SIDES}  # fmt: skip
    for k in keys:
        ours, theirs = medians["ours"][k], medians["theirs"][k]
        ratio = ours / theirs if theirs else float("nan")
        print(f"  {k:<12} {ours:>9.2f} {theirs:>9.2f} {ratio:>12.2f}")
    if args.json:
        print(json.dumps({"runs": results, "medians": medians}))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
