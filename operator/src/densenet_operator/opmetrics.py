"""The operator's own Prometheus metrics (names are a contract with the chart's alerts and
dashboards)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from .policy import FAILED, INITIALIZING, PENDING, RESTARTING, RUNNING, SUCCEEDED, SUSPENDED

PREFIX = "densenet_operator"
PHASES = (PENDING, INITIALIZING, RUNNING, RESTARTING, SUCCEEDED, FAILED, SUSPENDED)
JOB_LABELS = ("namespace", "accelerator")
# What triggers a reconcile: a job event, a pod event, the resync loop, a scheduled retry.
HANDLERS = ("job", "pod", "resync", "timer")


class OperatorMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # *_created series say nothing a dashboard or alert uses
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def jobs(event: str, doc: str) -> Counter:
            return Counter(f"{PREFIX}_jobs_{event}", doc, JOB_LABELS, registry=r)

        self.jobs_created = jobs("created", "DenseNetTrainingJobs seen for the first time")
        self.jobs_succeeded = jobs("succeeded", "Jobs that reached Succeeded")
        self.jobs_failed = jobs("failed", "Jobs that reached Failed")
        self.jobs_restarted = jobs("restarted", "Whole-job restarts (failures and preemptions)")
        self.pods_created = Counter(
            f"{PREFIX}_pods_created", "Trainer pods created", JOB_LABELS, registry=r
        )
        self.reconcile_seconds = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Wall time of one reconcile of one job",
            ["handler"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.reconcile_errors = Counter(
            f"{PREFIX}_reconcile_errors", "Reconciles that raised an error", ["handler"], registry=r
        )
        for handler in HANDLERS:  # a healthy operator shows 0, not "no data"
            self.reconcile_errors.labels(handler=handler)
        self.progress_reads = Counter(
            f"{PREFIX}_progress_reads",
            "Reads of a chief's /metrics: ok, failed, or skipped (no-scrape node, not running)",
            ["result"],
            registry=r,
        )
        self.jobs_by_phase = Gauge(f"{PREFIX}_jobs", "Jobs per phase", ["phase"], registry=r)
        for phase in PHASES:
            self.jobs_by_phase.labels(phase=phase).set(0)
        self.counters = {
            "created": self.jobs_created,
            "succeeded": self.jobs_succeeded,
            "failed": self.jobs_failed,
            "restarted": self.jobs_restarted,
        }

    def count(self, event: str, namespace: str, accelerator: str) -> None:
        self.counters[event].labels(namespace=namespace, accelerator=accelerator).inc()

    def set_phases(self, phases: list[str]) -> None:
        for phase in PHASES:
            self.jobs_by_phase.labels(phase=phase).set(phases.count(phase))

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
