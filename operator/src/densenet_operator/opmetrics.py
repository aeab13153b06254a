"""The operator's own Prometheus metrics. The names are densenet_contract.metrics': the chart's
alerts and dashboards query them."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from densenet_contract import metrics as names

from .lifecycle import (
    FAILED,
    INITIALIZING,
    PENDING,
    QUEUED,
    RESTARTING,
    RUNNING,
    SUCCEEDED,
    SUSPENDED,
)

PHASES = (PENDING, QUEUED, INITIALIZING, RUNNING, RESTARTING, SUCCEEDED, FAILED, SUSPENDED)
JOB_LABELS = names.OPERATOR_JOB_LABELS
# What triggers a reconcile: a job event, a pod event, the resync loop, a scheduled retry.
HANDLERS = ("job", "pod", "resync", "timer")


class OperatorMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # *_created series say nothing a dashboard or alert uses
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def jobs(name: str, doc: str) -> Counter:
            return Counter(name, doc, JOB_LABELS, registry=r)

        self.jobs_created = jobs(names.JOBS_CREATED, "DenseNetTrainingJobs seen for the first time")
        self.jobs_succeeded = jobs(names.JOBS_SUCCEEDED, "Jobs that reached Succeeded")
        self.jobs_failed = jobs(names.JOBS_FAILED, "Jobs that reached Failed")
        self.jobs_restarted = jobs(
            names.JOBS_RESTARTED, "Whole-job restarts (failures and preemptions)"
        )
        self.pods_created = jobs(names.PODS_CREATED, "Trainer pods created")
        self.reconcile_seconds = Histogram(
            names.RECONCILE_DURATION,
            "Wall time of one reconcile of one job",
            [names.HANDLER_LABEL],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.reconcile_errors = Counter(
            names.RECONCILE_ERRORS,
            "Reconciles that raised an error",
            [names.HANDLER_LABEL],
            registry=r,
        )
        for handler in HANDLERS:  # a healthy operator shows 0, not "no data"
            self.reconcile_errors.labels(handler=handler)
        self.leader = Gauge(
            names.LEADER, "1 while this replica holds the leader Lease and acts", registry=r
        )
        self.progress_reads = Counter(
            names.PROGRESS_READS,
            "Reads of a chief's /metrics: ok, failed, or skipped (no-scrape node, not running)",
            [names.RESULT_LABEL],
            registry=r,
        )
        self.jobs_by_phase = Gauge(
            names.JOBS_BY_PHASE, "Jobs per phase", [names.PHASE_LABEL], registry=r
        )
        for phase in PHASES:
            self.jobs_by_phase.labels(phase=phase).set(0)
        self.recovery_seconds = Histogram(
            names.RECOVERY_DURATION,
            "Time from a whole-job restart to the new attempt's first training step",
            JOB_LABELS,
            buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800),
            registry=r,
        )
        self.steps_lost = jobs(
            names.STEPS_LOST, "Training steps redone after restarts (reached minus resumed from)"
        )
        self.jobs_stalled = Gauge(
            names.JOBS_STALLED,
            "Running jobs whose step has not moved for their runPolicy.progressDeadlineSeconds "
            "(condition Stalled)",
            registry=r,
        )
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
