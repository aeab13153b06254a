"""Operator at scale on the local control plane: apply N jobs x 4 pods at once (kwok nodes run
them) and print, per job, the time from apply until all its pods exist and until all are
Running (p50, p99), the operator's RSS (peak and at the end) and CPU seconds (from /proc), and
the pods' total bytes as the API returns them (compact JSON, status included).

    .venv/bin/python benchmarks/operator_scale.py [--jobs 100] [--pods-per-job 4]
    .venv/bin/python benchmarks/operator_scale.py --jobs 1000          # 1,000 jobs x 4 pods
    .venv/bin/python benchmarks/operator_scale.py --jobs 1 --pods-per-job 125 --gaudi
                                      # one Gaudi job, 125 pods x 8 cards: 1,000 processes
    .venv/bin/python benchmarks/operator_scale.py \
        --operator-pythonpath OLD/operator/src:OLD/contract/src   # another tree's operator
    .venv/bin/python benchmarks/operator_scale.py --render-only   # object sizes, no cluster

First it prints what one large Gaudi-shaped job (--size-replicas 125 x 8 cards: 125 pods,
1,000 trainer processes) puts into etcd, by pure rendering: the pods' total bytes, the
ConfigMaps' and the largest single environment value, with TF_CONFIG's cluster in one
ConfigMap ("now") and, reconstructed from the same render, inline in every pod's TF_CONFIG as
before ("inline").

Uses the local cluster (`make cluster-up`), or starts one and stops it at the end. Adds kwok
nodes for the pods (110 pods each) and removes them, its namespace and the operator at the end.
With --gaudi the pods are the Gaudi renderer's (8 habana.ai/gaudi, hugepages, 64Gi) and the
bench nodes are dense fake Gaudi nodes: 110 pods' worth of cards each, so the kwok load is the
same as for CPU pods (a real Gaudi node has 8 cards: one such pod).
The API server's rate limits are the control plane's defaults.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes import watch

from densenet_contract import env as contract_env
from densenet_contract import labels
from densenet_operator import DEFAULT_TRAINER_IMAGE, schema
from densenet_operator.job import Job
from densenet_operator.render import render
from densenet_operator.render.accelerators.base import TF_CLUSTER_VOLUME
from devcluster import cluster as devcluster
from devcluster.config import GAUDI_RESOURCE, ClusterPaths
from devcluster.nodes import FAKE_TOLERATION, FakeNodeSpec, node_manifest

REPO = Path(__file__).resolve().parents[1]
PODS_PER_NODE = 110
JOB_NAME_LABEL = labels.JOB


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def job(name: str, pods: int, selector: dict[str, str], gaudi: bool = False) -> dict:
    spec: dict = {
        "replicas": pods,
        "dataset": {"format": "synthetic"},
        "scheduling": {"nodeSelector": selector, "tolerations": [FAKE_TOLERATION]},
    }
    if gaudi:
        spec["accelerator"] = {"type": "gaudi", "perPod": 8}
        spec["template"] = {"resources": {"requests": {"memory": "64Gi"}}}
    return {
        "apiVersion": schema.API_VERSION,
        "kind": schema.KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def bench_node(name: str, selector: dict[str, str], gaudi: bool) -> dict:
    if not gaudi:
        return node_manifest(FakeNodeSpec(name, extra_labels=selector))
    # Room for PODS_PER_NODE Gaudi pods (8 cards, 4Gi hugepages, 64Gi memory each).
    capacity = {
        GAUDI_RESOURCE: str(8 * PODS_PER_NODE),
        "hugepages-2Mi": f"{4 * PODS_PER_NODE}Gi",
    }
    memory = f"{64 * PODS_PER_NODE + 64}Gi"
    return node_manifest(FakeNodeSpec(name, capacity, selector, memory=memory))


def pod_bytes(core: kube_client.CoreV1Api, namespace: str) -> tuple[int, int]:
    """Count and total compact-JSON bytes of the namespace's pods as the API returns them."""
    response = core.list_namespaced_pod(namespace, _preload_content=False)
    items = json.loads(response.data)["items"]
    return len(items), sum(len(json.dumps(p, separators=(",", ":"))) for p in items)


def gaudi_job(name: str, namespace: str, replicas: int) -> Job:
    obj = {
        "apiVersion": schema.API_VERSION,
        "kind": schema.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "accelerator": {"type": "gaudi", "perPod": 8},
            "dataset": {"format": "synthetic"},
            "template": {"resources": {"requests": {"memory": "64Gi"}}},
        },
    }
    return Job.from_object(schema.apply(obj))


def inline_tf_config(pod: dict, cluster: str) -> dict:
    """``pod`` as the operator rendered it before the cluster file: the whole TF_CONFIG in its
    environment, no cluster variables, volume or mount."""
    pod = json.loads(json.dumps(pod))
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    ours = (contract_env.TF_CLUSTER_FILE, contract_env.TF_TASK_TYPE, contract_env.TF_TASK_INDEX)
    value = contract_env.tf_config_text(
        json.loads(cluster), env[contract_env.TF_TASK_TYPE], int(env[contract_env.TF_TASK_INDEX])
    )
    container["env"] = [e for e in container["env"] if e["name"] not in ours]
    container["env"].append({"name": contract_env.TF_CONFIG, "value": value})
    container["volumeMounts"] = [
        m for m in container["volumeMounts"] if m["name"] != TF_CLUSTER_VOLUME
    ]
    pod["spec"]["volumes"] = [v for v in pod["spec"]["volumes"] if v["name"] != TF_CLUSTER_VOLUME]
    return pod


def object_sizes(replicas: int, name: str, namespace: str) -> None:
    """Print the bytes a Gaudi job of ``replicas`` x 8 puts into etcd, now and inline."""
    manifests = render(gaudi_job(name, namespace, replicas), DEFAULT_TRAINER_IMAGE)
    (cluster_map,) = manifests.config_maps
    cluster = cluster_map["data"][contract_env.TF_CLUSTER_KEY]

    def size(obj: dict) -> int:
        return len(json.dumps(obj, separators=(",", ":")))

    def largest_env(pods: list[dict]) -> int:
        return max(len(e["value"]) for p in pods for e in p["spec"]["containers"][0]["env"])

    inline = [inline_tf_config(pod, cluster) for pod in manifests.pods]
    print(
        f"gaudi {replicas} x 8 ({len(manifests.pods)} pods, {replicas * 8} processes), "
        f"{len(name)}-character job name, {len(namespace)}-character namespace:"
    )
    for label, pods, maps in (("inline", inline, []), ("now", manifests.pods, [cluster_map])):
        print(
            f"  {label:>6}: pods {sum(map(size, pods)):>10,} bytes, ConfigMap "
            f"{sum(map(size, maps)):>8,} bytes, largest env value {largest_env(pods):>7,} bytes"
        )


class PodTimes(threading.Thread):
    """Watches the namespace's pods: first time each job has all pods, and all Running."""

    def __init__(
        self,
        core: kube_client.CoreV1Api,
        namespace: str,
        pods: int,
        timeout: int,
        owner_label: str = JOB_NAME_LABEL,
    ) -> None:
        super().__init__(daemon=True)
        self.core, self.namespace, self.pods, self.timeout = core, namespace, pods, timeout
        self.owner_label = owner_label
        self.seen: dict[str, set[str]] = {}
        self.running: dict[str, set[str]] = {}
        self.all_exist: dict[str, float] = {}
        self.all_running: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        """Watch until stopped, resuming a watch the server ends or breaks (an ERROR event, a
        timeout, a dropped connection): from the last resourceVersion, else from a fresh list,
        whose pods arrive as ADDED again (a time already recorded is kept)."""
        version = ""
        deadline = time.monotonic() + self.timeout
        while not self.stop.is_set() and time.monotonic() < deadline:
            w = watch.Watch()
            # Raw dicts: deserializing every event into client models would compete for the CPU.
            options = {"resource_version": version} if version else {}
            try:
                for event in w.stream(
                    self.core.list_namespaced_pod, self.namespace, timeout_seconds=60,
                    deserialize=False, **options,
                ):  # fmt: skip
                    if event["type"] == "ERROR":  # e.g. 410: the version is too old
                        version = ""
                        break
                    pod = event["object"]  # a dict: deserialize=False
                    version = pod["metadata"].get("resourceVersion", version)
                    self.observe(pod, time.monotonic())
                    if self.stop.is_set():
                        w.stop()
                        return
            except Exception:  # a broken stream: start again from a list
                version = ""

    def observe(self, pod: dict, now: float) -> None:
        name = pod["metadata"]["name"]
        owner = (pod["metadata"].get("labels") or {}).get(self.owner_label)
        if not owner:
            return
        self.seen.setdefault(owner, set()).add(name)
        if len(self.seen[owner]) == self.pods:
            self.all_exist.setdefault(owner, now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(owner, set()).add(name)
            if len(self.running[owner]) == self.pods:
                self.all_running.setdefault(owner, now)


def proc_figures(pid: int) -> tuple[float, float, float]:
    """Peak RSS (MB), current RSS (MB) and CPU seconds (user + system) of a process."""
    kb = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            kb[line.split(":")[0]] = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return kb["VmHWM"] / 1024, kb["VmRSS"] / 1024, (int(fields[11]) + int(fields[12])) / ticks


def wait_established(crd: str, timeout: float = 60) -> None:
    """Until the CRD is served (`kubectl wait` fails while it has no status yet)."""
    api = kube_client.ApiextensionsV1Api()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = api.read_custom_resource_definition(crd).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    sys.exit(f"the CRD {crd} was not Established within {timeout:.0f} s")


@dataclass
class Figures:
    """What one controller did with one batch of jobs."""

    jobs: int
    exist: list[float]  # apply -> all of a job's pods exist, per job that got there
    running: list[float]  # apply -> all of them Running
    rss_peak: float
    rss_end: float
    cpu: float  # the process's CPU seconds since it started
    cpu_run: float  # of which from the first apply to the end of the measure

    def lines(self, timeout: float) -> list[str]:
        out = []
        for what, values in (("all pods exist", self.exist), ("all pods Running", self.running)):
            if len(values) < self.jobs:
                out.append(
                    f"  {what}: only {len(values)} of {self.jobs} jobs got there in {timeout:.0f} s"
                )
            if values:
                out.append(
                    f"  apply -> {what}: p50 {statistics.median(values):.2f} s, "
                    f"p99 {percentile(values, 99):.2f} s, max {max(values):.2f} s"
                )
        out.append(
            f"  controller: RSS peak {self.rss_peak:.0f} MB, end {self.rss_end:.0f} MB, "
            f"CPU {self.cpu:.1f} s ({self.cpu_run:.1f} s of it from the first apply on)"
        )
        return out


@dataclass
class Bench:
    """The local cluster (started here when it was not running) and kwok nodes for the pods."""

    core: kube_client.CoreV1Api
    custom: kube_client.CustomObjectsApi
    kubeconfig: Path
    paths: ClusterPaths
    selector: dict[str, str]
    nodes: list[str]
    run_id: str
    was_running: bool

    @classmethod
    def start(cls, total_pods: int, gaudi: bool = False) -> Bench:
        paths = ClusterPaths.default()
        was_running = all(healthy for _, _, healthy in devcluster.status(paths))
        kubeconfig = devcluster.up(paths, log=lambda _m: None)
        kube_config.load_kube_config(str(kubeconfig))
        core = kube_client.CoreV1Api()
        run_id = uuid.uuid4().hex[:6]
        selector = {"densenet.dev/bench": run_id}
        nodes = [f"kwok-bench-{run_id}-{i}" for i in range(-(-total_pods // PODS_PER_NODE))]
        for name in nodes:
            core.create_node(bench_node(name, selector, gaudi))
        bench = cls(core, kube_client.CustomObjectsApi(), kubeconfig, paths, selector, nodes,
                    run_id, was_running)  # fmt: skip
        bench.kubectl("apply", "-f", str(REPO / "crds"))
        # On a fresh cluster the CRD is not served at once: kopf, started before it is,
        # would never watch the jobs.
        wait_established(f"{schema.PLURAL}.{schema.GROUP}")
        return bench

    def kubectl(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.paths.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"kubectl {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def measure(
        self,
        namespace: str,
        controller: subprocess.Popen,
        create: Callable[[str], None],
        *,
        jobs: int,
        pods_per_job: int,
        timeout: float,
        owner_label: str = JOB_NAME_LABEL,
    ) -> Figures:
        """Create ``jobs`` jobs named job-NNNN through ``create`` as fast as the API takes
        them, and time each until all its pods exist and all run (or ``timeout``)."""
        watcher = PodTimes(self.core, namespace, pods_per_job, int(timeout) + 120, owner_label)
        watcher.start()
        try:
            time.sleep(3)  # the controller's watches are up (not part of any figure)
            if controller.poll() is not None:
                raise SystemExit(f"the controller exited with code {controller.returncode} "
                                 "before the first job was applied; see its log")  # fmt: skip
            cpu_start = proc_figures(controller.pid)[2]
            applied: dict[str, float] = {}
            for i in range(jobs):
                name = f"job-{i:04d}"
                create(name)
                applied[name] = time.monotonic()
            deadline = time.monotonic() + timeout
            while len(watcher.all_running) < jobs and time.monotonic() < deadline:
                time.sleep(0.2)
            rss_peak, rss_end, cpu = proc_figures(controller.pid)
        finally:
            watcher.stop.set()
        return Figures(
            jobs,
            [watcher.all_exist[n] - t for n, t in applied.items() if n in watcher.all_exist],
            [watcher.all_running[n] - t for n, t in applied.items() if n in watcher.all_running],
            rss_peak, rss_end, cpu, cpu - cpu_start,
        )  # fmt: skip

    def delete_namespace(self, namespace: str, pods: int) -> None:
        """Delete it and wait until it is gone: its pods go while kwok still runs their nodes."""
        self.core.delete_namespace(namespace)
        gone_by = time.monotonic() + max(300, pods / 10)
        while time.monotonic() < gone_by and any(
            ns.metadata.name == namespace for ns in self.core.list_namespace().items
        ):
            time.sleep(1)

    def stop(self) -> None:
        for name in self.nodes:
            self.core.delete_node(name)
        if not self.was_running:
            devcluster.down(self.paths, log=lambda _m: None)


def stop_process(process: subprocess.Popen, what: str) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        print(f"  ({what} did not exit within 30 s of SIGTERM: killed)")
        process.kill()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--pods-per-job", type=int, default=4)
    parser.add_argument(
        "--gaudi", action="store_true", help="Gaudi pods (8 cards each) instead of CPU pods"
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for all pods Running"
    )
    parser.add_argument(
        "--operator-pythonpath",
        default="",
        help="PYTHONPATH for the operator process only, e.g. another worktree's "
        "operator/src:contract/src (a before/after comparison)",
    )
    parser.add_argument("--size-replicas", type=int, default=125, help="pods of the sized job")
    parser.add_argument(
        "--render-only", action="store_true", help="print the object sizes only: no cluster"
    )
    args = parser.parse_args()
    object_sizes(args.size_replicas, "dn121-gaudi", "bench")
    # The longest names the CRD allows: the worst case for every address in TF_CONFIG.
    object_sizes(args.size_replicas, "j" * 52, "n" * 63)
    if args.render_only:
        return 0

    total_pods = args.jobs * args.pods_per_job
    bench = Bench.start(total_pods, args.gaudi)
    namespace = f"bench-{bench.run_id}"
    bench.core.create_namespace({"metadata": {"name": namespace}})
    env = bench.env()
    if args.operator_pythonpath:
        env["PYTHONPATH"] = args.operator_pythonpath
    operator = subprocess.Popen(
        [sys.executable, "-m", "densenet_operator.cli", "run", "-n", namespace,
         "--liveness", "", "--metrics-port", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def create(name: str) -> None:
        bench.custom.create_namespaced_custom_object(
            schema.GROUP, schema.VERSION, namespace, schema.PLURAL,
            job(name, args.pods_per_job, bench.selector, args.gaudi),
        )  # fmt: skip

    try:
        figures = bench.measure(
            namespace, operator, create,
            jobs=args.jobs, pods_per_job=args.pods_per_job, timeout=args.timeout,
        )  # fmt: skip
        pod_count, total_bytes = pod_bytes(bench.core, namespace)
        listed = bench.custom.list_namespaced_custom_object(
            schema.GROUP, schema.VERSION, namespace, schema.PLURAL
        )["items"]
        phases = collections.Counter((j.get("status") or {}).get("phase", "none") for j in listed)
        pod_phases = collections.Counter(
            p.status.phase for p in bench.core.list_namespaced_pod(namespace).items
        )
        print(f"  at the end: jobs {dict(phases)}, pods {dict(pod_phases)}")
    finally:
        stop_process(operator, "the operator")
        bench.delete_namespace(namespace, total_pods)
        bench.stop()

    shape = "Gaudi pods (8 cards)" if args.gaudi else "pods"
    print(f"{args.jobs} jobs x {args.pods_per_job} {shape} on {len(bench.nodes)} kwok nodes")
    if args.operator_pythonpath:
        print(f"  operator PYTHONPATH={args.operator_pythonpath}")
    print("\n".join(figures.lines(args.timeout)))
    print(f"  pods: {pod_count:,}, {total_bytes:,} bytes as the API returns them")
    return 0 if len(figures.running) == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
