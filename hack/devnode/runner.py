"""The node runner's main loop: register the Node, watch the API, keep one PodWorker per pod
bound to this node, and on SIGTERM stop every pod and remove everything it created."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from devcluster.apirelay import ApiRelay
from devcluster.config import API_SERVER_PORT
from devnode.context import Context
from devnode.images import ImageRule
from devnode.ipam import IPAllocator
from devnode.kube import Kube, Store
from devnode.logserver import LogServer
from devnode.netns import PodNetwork
from devnode.node import NodeAgent, NodeSpec
from devnode.volumefs import MountPoints
from devnode.worker import PodWorker

log = logging.getLogger(__name__)

TICK_S = 0.25


@dataclass(frozen=True)
class RunnerConfig:
    kubeconfig: Path
    node: NodeSpec
    net: PodNetwork
    exclude: tuple  # IPv4Networks inside the pod CIDR not to hand out
    state_dir: Path
    rules: tuple[ImageRule, ...]
    api_host: str
    shutdown_grace_s: float


LOCK_DIR = Path("/run")
REGISTER_TIMEOUT_S = 30


class RunnerError(Exception):
    """The runner cannot start; the message says why."""


def cleanup_leftovers(net: PodNetwork, state_dir: Path, keep_logs: bool = False) -> None:
    """Whatever a run (or a crashed one) left behind: processes, namespaces, links, files."""
    net.cleanup_all()
    MountPoints(state_dir / "mountpoints").remove_all()
    for sub in ("pods", "pki") if keep_logs else ("pods", "pki", "logs"):
        shutil.rmtree(state_dir / sub, ignore_errors=True)


def lock_bridge(bridge: str) -> TextIO:
    """One runner per bridge: a second one would tear down the first one's pods at start."""
    f = (LOCK_DIR / f"devnode-{bridge}.lock").open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise RunnerError(f"--bridge {bridge}: another runner (pid {holder}) uses it") from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f


def register(agent: NodeAgent, stopping: threading.Event) -> None:
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    while True:
        try:
            agent.register()
            return
        except Exception as exc:
            if time.monotonic() > deadline or stopping.is_set():
                raise RunnerError(f"cannot register node {agent.spec.name}: {exc}") from None
            time.sleep(1)


class Runner:
    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.workers: dict[str, PodWorker] = {}

    def _changed(self) -> None:
        self.wake.set()

    def request_stop(self, *_: object) -> None:
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        cfg = self.cfg
        lock = lock_bridge(cfg.net.bridge)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        cleanup_leftovers(cfg.net, cfg.state_dir)
        kube = Kube(cfg.kubeconfig)
        agent = NodeAgent(kube, cfg.node)
        register(agent, self.stopping)
        cfg.net.create_bridge()
        logs = None
        relay = ApiRelay((cfg.api_host, API_SERVER_PORT), ("127.0.0.1", API_SERVER_PORT))
        relay.start()
        try:
            if cfg.node.logs_port:
                logs = LogServer(
                    str(cfg.net.gateway),
                    cfg.node.logs_port,
                    cfg.state_dir,
                    self.running,
                    client_ca=kube.ca_file,
                )
                logs.start()
            ctx = self._context(kube)
            agent.start()
            log.info(
                "node %s ready: pods on %s via %s", cfg.node.name, cfg.net.cidr, cfg.net.bridge
            )
            self._loop(ctx)
        finally:
            agent.stopping.set()
            relay.stop()
            if logs is not None:
                logs.stop()
            self._shutdown()
            cleanup_leftovers(cfg.net, cfg.state_dir, keep_logs=True)
            try:
                agent.patch_status(ready=False, reason="RunnerStopped")
            except Exception as exc:
                log.debug("final node status: %s", exc)
            Path(lock.name).unlink(missing_ok=True)  # still held: no other runner is past it
            lock.close()

    def running(self, namespace: str, pod: str, container: str) -> bool:
        return any(
            w.namespace == namespace and w.name == pod and container in w.procs
            for w in list(self.workers.values())
        )

    def _context(self, kube: Kube) -> Context:
        cfg = self.cfg
        stores = {
            name: Store(kube, path, self._changed)
            for name, path in {
                "pods": "/api/v1/pods",
                "services": "/api/v1/services",
                "configmaps": "/api/v1/configmaps",
                "secrets": "/api/v1/secrets",
            }.items()
        }
        for store in stores.values():
            store.start()
        for store in stores.values():
            while not store.synced.wait(1):
                if self.stopping.is_set():
                    raise SystemExit(0)
        ca_pem = Path(kube.ca_file).read_bytes() if kube.ca_file else b""
        return Context(
            kube=kube,
            node=cfg.node,
            net=cfg.net,
            state_dir=cfg.state_dir,
            rules=cfg.rules,
            ipam=IPAllocator(cfg.net.cidr, cfg.net.gateway, cfg.exclude),
            mountpoints=MountPoints(cfg.state_dir / "mountpoints"),
            pods=stores["pods"],
            services=stores["services"],
            configmaps=stores["configmaps"],
            secrets=stores["secrets"],
            ca_pem=ca_pem,
            wake=self.wake,
            api_host=cfg.api_host,
        )

    def _loop(self, ctx: Context) -> None:
        self.ctx = ctx
        while not self.stopping.is_set():
            self.wake.wait(TICK_S)
            self.wake.clear()
            if self.stopping.is_set():
                break
            self._sync(ctx)

    def _sync(self, ctx: Context) -> None:
        all_pods = ctx.pods.items()
        mine = {
            p["metadata"]["uid"]: p for p in all_pods if p["spec"].get("nodeName") == ctx.node.name
        }
        for uid, pod in mine.items():
            if uid in self.workers:
                continue
            terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            if terminal and not pod["metadata"].get("deletionTimestamp"):
                continue  # finished before this runner started
            self.workers[uid] = PodWorker(ctx, pod)
        for uid, worker in list(self.workers.items()):
            try:
                worker.sync(mine.get(uid))
            except Exception:
                log.exception("pod %s/%s", worker.namespace, worker.name)
            if worker.finished:
                del self.workers[uid]
        by_ns: dict[str, list[dict]] = defaultdict(list)
        for p in all_pods:
            by_ns[p["metadata"]["namespace"]].append(p)
        services: dict[str, list[dict]] = defaultdict(list)
        for s in ctx.services.items():
            services[s["metadata"]["namespace"]].append(s)
        for worker in self.workers.values():
            try:
                worker.refresh_hosts(by_ns[worker.namespace], services[worker.namespace])
            except OSError as exc:
                log.debug("hosts for %s: %s", worker.name, exc)

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.cfg.shutdown_grace_s
        for worker in self.workers.values():
            worker.shutdown(deadline)
        while time.monotonic() < deadline and not all(w.stopped() for w in self.workers.values()):
            time.sleep(0.1)
        for worker in self.workers.values():
            worker._teardown()
        self.workers.clear()


def install_signal_handlers(runner: Runner) -> None:
    signal.signal(signal.SIGTERM, runner.request_stop)
    signal.signal(signal.SIGINT, runner.request_stop)
