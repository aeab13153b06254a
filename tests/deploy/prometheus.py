"""A real Prometheus for the cluster tests: Debian's server (/usr/bin/prometheus) on 127.0.0.1,
its data in a temporary directory, fed by Prometheus's own Kubernetes service discovery.

Debian builds Prometheus without `kubernetes_sd_configs` (it refuses the field), so
`densenet-k8s-sd` (tests/deploy/k8s_sd/main.go) runs that discovery code
(github.com/prometheus/prometheus/discovery/kubernetes, at the version the pinned Prometheus
Operator is built against) and serves its targets, with every `__meta_kubernetes_*` label, over
`http_sd_configs`. Each scrape job keeps the relabel_configs written for
kubernetes_sd_configs (tests/deploy/promconfig.py), unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from devcluster.config import cache_root
from tests.deploy.monitoring_crds import MODULE as OPERATOR_MODULE
from tests.deploy.monitoring_crds import pinned_version

SD_SOURCE = Path(__file__).parent / "k8s_sd" / "main.go"
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
DEBIAN_PROMETHEUS = "/usr/bin/prometheus"


class PrometheusSetupError(RuntimeError):
    """A tool is missing or would not start; the message says how to fix it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise PrometheusSetupError("`go` is missing: it builds densenet-k8s-sd (install Go 1.26)")
    return go


def _go_json(go: str, *args: str, cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [go, *args], cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise PrometheusSetupError(f"go {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def prometheus_module_version(go: str, scratch: Path) -> str:
    """The github.com/prometheus/prometheus version the pinned Prometheus Operator requires."""
    module = f"{OPERATOR_MODULE}@{pinned_version()}"
    info = _go_json(go, "mod", "download", "-json", module, cwd=scratch)
    for line in Path(info["GoMod"]).read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == PROMETHEUS_MODULE:
            return fields[1]
    raise PrometheusSetupError(f"{OPERATOR_MODULE}'s go.mod does not require {PROMETHEUS_MODULE}")


def k8s_sd_binary() -> Path:
    """densenet-k8s-sd, built once per (Prometheus Operator version, source) into the cache."""
    digest = hashlib.sha256(SD_SOURCE.read_bytes()).hexdigest()[:12]
    key = f"densenet-k8s-sd-{pinned_version()}-{digest}"
    binary = cache_root() / "bin" / key / "densenet-k8s-sd"
    if binary.is_file():
        return binary
    go = _go()
    src = cache_root() / "src" / key
    src.mkdir(parents=True, exist_ok=True)
    version = prometheus_module_version(go, src)
    (src / "go.mod").write_text(
        f"module densenet.local/k8s-sd\n\ngo 1.26.0\n\nrequire {PROMETHEUS_MODULE} {version}\n"
    )
    shutil.copyfile(SD_SOURCE, src / "main.go")
    env = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    for step in (["mod", "tidy"], ["build", "-ldflags", "-s -w", "-o", "densenet-k8s-sd.out", "."]):
        result = subprocess.run(
            [go, *step], cwd=src, capture_output=True, text=True, timeout=1800, check=False,
            env={**os.environ, **env},
        )  # fmt: skip
        if result.returncode != 0:
            raise PrometheusSetupError(f"go {' '.join(step)} in {src}: {result.stderr[-2000:]}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src / "densenet-k8s-sd.out", binary.with_suffix(".tmp"))
    binary.with_suffix(".tmp").rename(binary)
    return binary


def _get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Prometheus:
    """densenet-k8s-sd and Prometheus, started together, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.sd_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, scrape_configs: list[dict[str, Any]], rule_files: list[str], interval: str
    ) -> Prometheus:
        """Start both with `scrape_configs` (written for kubernetes_sd_configs): each job's
        kubernetes SD block goes to densenet-k8s-sd, and the job reads it over http_sd."""
        binary = k8s_sd_binary()
        if not Path(DEBIAN_PROMETHEUS).is_file():
            raise PrometheusSetupError(
                f"{DEBIAN_PROMETHEUS} is missing: install Debian's 'prometheus' package (.ci/run)"
            )
        sd_jobs, jobs = {}, []
        for job in scrape_configs:
            (sd,) = job["kubernetes_sd_configs"]
            sd_jobs[job["job_name"]] = sd
            name = urllib.parse.quote(job["job_name"], safe="")
            url = f"http://127.0.0.1:{self.sd_port}/targets/{name}"
            rest = {k: v for k, v in job.items() if k != "kubernetes_sd_configs"}
            jobs.append({**rest, "http_sd_configs": [{"url": url, "refresh_interval": "1s"}]})
        sd_config = self.workdir / "k8s-sd.yaml"
        sd_config.write_text(yaml.safe_dump({"jobs": sd_jobs}))
        config = self.workdir / "prometheus.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": interval, "evaluation_interval": interval},
                    "rule_files": rule_files,
                    "scrape_configs": jobs,
                }
            )
        )
        self._spawn(
            "k8s-sd",
            [str(binary), "-config", str(sd_config), "-listen", f"127.0.0.1:{self.sd_port}"],
        )
        self._spawn(
            "prometheus",
            [
                DEBIAN_PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--storage.tsdb.retention.time=2h",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise PrometheusSetupError(f"{process.args[0]} exited: see {self.workdir}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        raise PrometheusSetupError(f"Prometheus not ready after 60 s: see {self.workdir}")

    def _spawn(self, name: str, command: list[str]) -> None:
        with (self.workdir / f"{name}.log").open("wb") as log:
            self.processes.append(
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
            )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)

    # --- HTTP API -------------------------------------------------------------------------
    def api(self, path: str, **params: str | float) -> Any:
        query = urllib.parse.urlencode(params)
        body = _get_json(f"{self.url}/api/v1/{path}?{query}")
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, str | float] = {"query": expr}
        if at is not None:
            params["time"] = at
        return self.api("query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def targets(self) -> dict[str, Any]:
        return self.api("targets", state="any")
