"""One pod on this node, driven level-based: every sync() looks at the latest pod object and
moves its sandbox, volumes and containers one step towards it, then writes the status."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

from devcluster.config import REPO_ROOT
from devnode import hosts, procs
from devnode.context import Context
from devnode.envvars import ConfigError, command_line, container_env
from devnode.events import Event, post
from devnode.images import match, path_for
from devnode.kube import KubeError
from devnode.netns import write_in_place
from devnode.probes import Prober
from devnode.status import ContainerRecord, conditions, pod_phase, pod_status, terminated
from devnode.timefmt import now_rfc3339
from devnode.volumefs import sync_files
from devnode.volumes import (
    FILE_VOLUMES,
    FileContext,
    claimed_host_path,
    container_mounts,
    kind_of,
    volume_files,
    with_service_account_volume,
)

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 30
FORCED_GRACE_S = 2
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 10.0
TOKEN_REFRESH = 0.8  # of the token's lifetime, as the kubelet does


class PodWorker:
    def __init__(self, ctx: Context, pod: dict) -> None:
        self.ctx = ctx
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.pod = with_service_account_volume(pod)
        self.dir = ctx.state_dir / "pods" / self.uid
        self.log_dir = ctx.state_dir / "logs" / f"{self.namespace}_{self.name}_{self.uid}"
        spec = self.pod["spec"]
        self.init = [
            ContainerRecord(c["name"], c.get("image", "")) for c in spec.get("initContainers", [])
        ]
        self.main = [
            ContainerRecord(c["name"], c.get("image", "")) for c in spec.get("containers", [])
        ]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.probers: dict[str, Prober] = {}
        self.next_start: dict[str, float] = {}
        self.init_done = 0
        self.init_failed = False
        self.pod_ip: str | None = None
        self.netns: str | None = None
        self.volume_dirs: dict[str, str] = {}
        self.file_volumes: set[str] = set()
        self.start_time = (pod.get("status") or {}).get("startTime") or now_rfc3339()
        self.conditions: list[dict] = (pod.get("status") or {}).get("conditions") or []
        self.sent_status: dict | None = None
        self.hosts_text = ""
        self.tokens: dict[tuple[str | None, int], tuple[bytes, float]] = {}
        self.deadline: float | None = None
        self.finished = False
        self.events: list[Event] = []
        self.last_error = ""
        self.setup_failures = 0
        self.torn_down = False
        self.deleted_terminal = False  # deleted and stopped: report the terminal phase

    # ---- lifecycle -------------------------------------------------------------------------

    def sync(self, pod: dict | None) -> None:
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self._terminate(pod)
            return
        self.pod = with_service_account_volume(pod)
        phase = self._phase()
        if phase in ("Succeeded", "Failed"):
            self._teardown()
            self._publish()
            self._flush_events()
            return
        try:
            if self.netns is None:
                self._setup()
            self._sync_volumes()
            if self.init_done < len(self.init):
                self._run_init()
            else:
                self._run_main()
        except ConfigError as exc:
            self._waiting_error("CreateContainerConfigError", str(exc))
        except Exception as exc:
            if str(exc) != self.last_error:
                log.exception("pod %s/%s: %s", self.namespace, self.name, exc)
            self._waiting_error("ContainerCreating", str(exc))
        self._publish()
        self._flush_events()

    def _flush_events(self) -> None:
        if self.events:
            post(self.ctx.kube, self.pod, self.ctx.node.name, self.events)
            self.events = []

    def _waiting_error(self, reason: str, message: str) -> None:
        if message != self.last_error:
            self.last_error = message
            self.events.append(Event("Failed", message, warning=True))
        for c in self.init[self.init_done :] or self.main:
            if not c.running_since and not c.terminated:
                c.waiting_reason, c.waiting_message = reason, message

    def _phase(self) -> str:
        if self.deleted_terminal:
            ok = all(c.terminated and c.terminated["exitCode"] == 0 for c in self.main)
            return "Succeeded" if ok else "Failed"
        policy = self.pod["spec"].get("restartPolicy", "Always")
        return pod_phase(policy, self.init_done < len(self.init), self.init_failed, self.main)

    def _reap_all(self) -> None:
        """Record the exit of every container process that has ended."""
        for rec in [*self.init, *self.main]:
            state = self._reap(rec)
            if state is not None:
                rec.terminated = state

    # ---- sandbox ---------------------------------------------------------------------------

    def _setup(self) -> None:
        ctx = self.ctx
        if self.setup_failures:
            ctx.net.delete_pod(self.uid)
        self.setup_failures += 1
        self.pod_ip = ctx.ipam.allocate(self.uid, (self.pod.get("status") or {}).get("podIP"))
        for volume in self.pod["spec"].get("volumes", []):
            name, kind = volume["name"], kind_of(volume)
            if kind in ("hostPath", "persistentVolumeClaim"):
                source = (
                    volume["hostPath"]
                    if kind == "hostPath"
                    else self._claimed(volume["persistentVolumeClaim"]["claimName"])
                )
                path = Path(source["path"])
                kind_wanted = source.get("type", "")
                if kind_wanted in ("", "DirectoryOrCreate") and not path.exists():
                    path.mkdir(parents=True)
                elif kind_wanted == "FileOrCreate" and not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                self.volume_dirs[name] = str(path)
            else:
                path = self.dir / "volumes" / name
                path.mkdir(parents=True, exist_ok=True)
                self.volume_dirs[name] = str(path)
                if kind in FILE_VOLUMES:
                    self.file_volumes.add(name)
        (self.dir / "root").mkdir(parents=True, exist_ok=True)
        self.hosts_text = self.render_hosts()
        self.netns = ctx.net.create_pod(
            self.uid, self.pod_ip, self.hosts_text, hosts.render_resolv_conf(self.namespace)
        )
        self.setup_failures = 0

    def _claimed(self, claim_name: str) -> dict:
        """The hostPath behind PersistentVolumeClaim ``claim_name``, as a kubelet mounts a
        bound claim's volume; until it is bound the pod waits in ContainerCreating."""
        claims = f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims"
        claim = self.ctx.kube.get(f"{claims}/{claim_name}")
        pv_name = (claim.get("spec") or {}).get("volumeName")
        volume = self.ctx.kube.get(f"/api/v1/persistentvolumes/{pv_name}") if pv_name else None
        source = claimed_host_path(claim_name, claim, volume)
        if source is None:
            raise RuntimeError(f"persistentVolumeClaim {claim_name!r} is not bound yet")
        return source

    def render_hosts(self) -> str:
        ns_pods = [p for p in self.ctx.pods.items() if p["metadata"]["namespace"] == self.namespace]
        services = [
            s for s in self.ctx.services.items() if s["metadata"]["namespace"] == self.namespace
        ]
        return hosts.render_hosts(self.pod, self.pod_ip or "", ns_pods, services, self.ctx.net.cidr)

    def refresh_hosts(self, ns_pods: list[dict], services: list[dict]) -> None:
        if self.netns is None or not self.pod_ip:
            return
        text = hosts.render_hosts(self.pod, self.pod_ip, ns_pods, services, self.ctx.net.cidr)
        if text != self.hosts_text:
            write_in_place(self.ctx.net.etc_dir(self.uid) / "hosts", text)
            self.hosts_text = text

    def _token(self, audience: str | None, seconds: int) -> bytes:
        cached = self.tokens.get((audience, seconds))
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        spec: dict = {
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.name,
                "uid": self.uid,
            },
        }
        if audience:
            spec["audiences"] = [audience]
        try:
            resp = self.ctx.kube.request(
                "POST",
                f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
        except KubeError as exc:
            raise ConfigError(f"service account token for {sa!r}: {exc}") from exc
        token = resp["status"]["token"].encode()
        self.tokens[(audience, seconds)] = (token, time.monotonic() + seconds * TOKEN_REFRESH)
        return token

    def _sync_volumes(self) -> None:
        ctx = FileContext(
            pod=self.pod,
            pod_ip=self.pod_ip or "",
            host_ip=self.ctx.node.ip,
            node_allocatable=self.ctx.node.capacity(),
            configmaps=self.ctx.configmap,
            secrets=self.ctx.secret,
            token=self._token,
        )
        started = any(
            c.running_since or c.terminated or c.last_terminated for c in [*self.init, *self.main]
        )
        for volume in self.pod["spec"].get("volumes", []):
            if volume["name"] not in self.file_volumes:
                continue
            try:
                files = volume_files(volume, ctx)
            except ConfigError:
                if not started:
                    raise
                continue  # like the kubelet: keep the last content while the source is missing
            sync_files(Path(self.volume_dirs[volume["name"]]), files)

    # ---- containers ------------------------------------------------------------------------

    def _spec(self, name: str, init: bool) -> dict:
        key = "initContainers" if init else "containers"
        return next(c for c in self.pod["spec"].get(key, []) if c["name"] == name)

    def _start(self, rec: ContainerRecord, init: bool) -> None:
        if time.monotonic() < self.next_start.get(rec.name, 0):
            return
        spec = self._spec(rec.name, init)
        rule = match(self.ctx.rules, spec.get("image", ""))
        hostname = hosts.pod_hostname(self.pod)
        base = {
            "PATH": path_for(rule, self.ctx.host_path),
            "HOME": "/root",
            "HOSTNAME": hostname,
            **rule.env,
            **self.ctx.service_env(),
        }
        env = container_env(
            self.pod,
            spec,
            base=base,
            pod_ip=self.pod_ip or "",
            host_ip=self.ctx.node.ip,
            node_allocatable=self.ctx.node.capacity(),
            configmaps=self.ctx.configmap,
            secrets=self.ctx.secret,
        )
        argv = command_line(spec, env, rule.entrypoint)
        mounts = container_mounts(spec, self.volume_dirs, self.file_volumes, env)
        targets = [m.target for m in mounts]
        for m in mounts:
            if any(m.target.startswith(t.rstrip("/") + "/") for t in targets):
                continue  # nested in another volume: the shim makes it there
            self.ctx.mountpoints.ensure(m.target, Path(m.source).is_file(), self.uid)
        own_root = str(self.dir / "root")  # the image's "/", for the working directory
        cwd = spec.get("workingDir") or own_root
        self.ctx.mountpoints.ensure(cwd, False, self.uid)
        assert self.netns is not None
        proc = procs.start(
            netns=self.netns,
            hostname=hostname,
            argv=argv,
            env=env,
            cwd=cwd,
            mounts=mounts,
            spec_file=self.dir / "containers" / f"{rec.name}.json",
            log_file=self.log_dir / rec.name / f"{rec.restart_count}.log",
            # Host paths standing in for the image's files: no volume may hide them.
            image_paths=((str(REPO_ROOT),) if rule.path else ()) + (own_root,),
        )
        self.procs[rec.name] = proc
        rec.running_since = now_rfc3339()
        rec.terminated = None
        rec.waiting_message = ""
        rec.container_id = f"devnode://{self.uid[:8]}-{rec.name}-{proc.pid}"
        self.last_error = ""
        self.events.append(Event("Started", f"Started container {rec.name}", rec.name))
        if not init and ("readinessProbe" in spec or "livenessProbe" in spec):
            prober = Prober(spec, self.pod_ip or "", proc.pid, env, self.ctx.wake)
            self.probers[rec.name] = prober
            rec.probe_ready = prober.ready

    def _reap(self, rec: ContainerRecord) -> dict | None:
        """The terminated state if the container's process has exited."""
        proc = self.procs.get(rec.name)
        if proc is None or proc.poll() is None:
            return None
        del self.procs[rec.name]
        procs.signal_group(proc.pid, procs.signal.SIGKILL)  # its leftover children
        prober = self.probers.pop(rec.name, None)
        if prober is not None:
            prober.stop()
        code, sig = procs.exit_status(proc.returncode)
        state = terminated(code, rec.running_since or now_rfc3339(), now_rfc3339(), sig)
        rec.running_since = None
        return state

    def _after_exit(self, rec: ContainerRecord, state: dict, restart: bool) -> None:
        if not restart:
            rec.terminated = state
            return
        rec.last_terminated = state
        rec.terminated = None
        rec.waiting_reason, rec.waiting_message = "CrashLoopBackOff", ""
        delay = min(BACKOFF_MAX_S, BACKOFF_START_S * 2**rec.restart_count)
        rec.restart_count += 1
        self.next_start[rec.name] = time.monotonic() + delay
        message = (
            f"Back-off {delay:.0f}s restarting container {rec.name} (exit code {state['exitCode']})"
        )
        self.events.append(Event("BackOff", message, rec.name, warning=True))

    def _run_init(self) -> None:
        rec = self.init[self.init_done]
        if rec.name not in self.procs:
            if rec.terminated is None:
                self._start(rec, init=True)
            return
        state = self._reap(rec)
        if state is None:
            return
        if state["exitCode"] == 0:
            rec.terminated = state
            self.init_done += 1
            if self.init_done == len(self.init):
                self._run_main()
            return
        never = self.pod["spec"].get("restartPolicy", "Always") == "Never"
        self._after_exit(rec, state, restart=not never)
        self.init_failed = never

    def _run_main(self) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for rec in self.main:
            prober = self.probers.get(rec.name)
            if prober is not None and not prober.live and rec.name in self.procs:
                prober.stop()
                prober.live = True  # one kill per failure; the restart gets a fresh prober
                procs.signal_group(self.procs[rec.name].pid, procs.signal.SIGKILL)
                self.events.append(
                    Event("Unhealthy", "Liveness probe failed; restarting", rec.name, warning=True)
                )
            state = self._reap(rec)
            if state is not None:
                restart = policy == "Always" or (policy == "OnFailure" and state["exitCode"] != 0)
                self._after_exit(rec, state, restart)
            if rec.name not in self.procs and rec.terminated is None:
                self._start(rec, init=False)

    # ---- status ----------------------------------------------------------------------------

    def _publish(self) -> None:
        for rec in self.main:
            prober = self.probers.get(rec.name)
            rec.probe_ready = prober.ready if prober is not None else True
        phase = self._phase()
        terminal = phase in ("Succeeded", "Failed")
        now = now_rfc3339()
        self.conditions = conditions(
            self.conditions,
            now,
            sandbox_ready=self.netns is not None,
            initialized=self.init_done == len(self.init),
            containers_ready=not terminal
            and bool(self.main)
            and all(c.running_since and c.probe_ready for c in self.main),
            terminal=terminal,
        )
        status = pod_status(
            phase=phase,
            conditions=self.conditions,
            pod_ip=self.pod_ip,
            host_ip=self.ctx.node.ip,
            start_time=self.start_time,
            init_containers=self.init,
            containers=self.main,
        )
        if status == self.sent_status:
            return
        try:
            self.ctx.kube.merge_patch(
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status",
                {"metadata": {"uid": self.uid}, "status": status},
            )
            self.sent_status = status
        except KubeError as exc:
            log.debug("pod %s/%s status: %s", self.namespace, self.name, exc)

    # ---- teardown --------------------------------------------------------------------------

    def _signal_all(self, sig: int) -> None:
        for proc in self.procs.values():
            procs.signal_group(proc.pid, procs.signal.Signals(sig))

    def _terminate(self, pod: dict | None) -> None:
        if self.deadline is None:
            spec_grace = self.pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
            if pod is None:  # force-deleted: the API no longer waits for us
                grace = min(spec_grace, FORCED_GRACE_S)
            else:
                grace = pod["metadata"].get("deletionGracePeriodSeconds", spec_grace)
            self.deadline = time.monotonic() + grace
            self._signal_all(procs.signal.SIGTERM)
            if self.procs and pod is not None:
                names = ", ".join(sorted(self.procs))
                post(
                    self.ctx.kube, pod, self.ctx.node.name, [Event("Killing", f"Stopping {names}")]
                )
        self._reap_all()
        if self.procs and time.monotonic() < self.deadline:
            return
        self._teardown()
        shutil.rmtree(self.dir, ignore_errors=True)
        if pod is not None:
            # As a kubelet does, the pod is reported terminal (Succeeded when every container
            # exited 0, else Failed) before the object goes: a finalizer may hold it (Kueue's
            # waits for a terminal phase), and controllers read the exit codes meanwhile.
            self.deleted_terminal = True
            self._publish()
            try:
                self.ctx.kube.request(
                    "DELETE",
                    f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                    {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
                )
            except KubeError as exc:
                if exc.status not in (404, 409):
                    log.warning("pod %s/%s delete: %s", self.namespace, self.name, exc)
                    return
        self.finished = True

    def shutdown(self, deadline: float) -> None:
        """Runner stopping: SIGTERM now, SIGKILL at the deadline (the caller waits)."""
        self.deadline = deadline
        self._signal_all(procs.signal.SIGTERM)

    def stopped(self) -> bool:
        return all(p.poll() is not None for p in self.procs.values())

    def _teardown(self) -> None:
        if self.torn_down:
            return
        self.torn_down = True
        for prober in self.probers.values():
            prober.stop()
        self.probers.clear()
        self._signal_all(procs.signal.SIGKILL)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("pod %s/%s: pid %d did not die", self.namespace, self.name, proc.pid)
        self._reap_all()  # the exits of what SIGKILL stopped
        self.procs.clear()
        if self.netns is not None:
            self.ctx.net.delete_pod(self.uid)
            self.netns = None
        self.ctx.ipam.release(self.uid)
        self.ctx.mountpoints.release(self.uid)
