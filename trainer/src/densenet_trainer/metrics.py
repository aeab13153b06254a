"""Prometheus metrics: one prefix (densenet_), base units, counters end in _total.

A private registry keeps the exposition to our own metrics. Every metric carries the labels
job_name, job_namespace and rank (from the operator's environment, see env.py): a handful of
values per job, never per step or per image.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.exposition import start_http_server

PREFIX = "densenet"
LABELS = ("job_name", "job_namespace", "rank")
# Step durations from a small CPU batch (~0.1 s) to a large accelerator loop step.
STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class TrainerMetrics:
    def __init__(self, labels: dict[str, str]) -> None:
        # A *_created series per counter/histogram doubles the families and says nothing a
        # dashboard uses (the process start time is known).
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r, n = self.registry, list(LABELS)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", doc, n, registry=r).labels(**labels)

        self.images = Counter(
            f"{PREFIX}_images_processed",
            "Training images processed by the whole job (counted by every rank)",
            n,
            registry=r,
        ).labels(**labels)
        self.images_per_second = gauge(
            "images_per_second",
            "Training throughput of the whole job over the last host loop, images per second",
        )
        self.loss = gauge("loss", "Cross-entropy loss of the last training step")
        self.reg_loss = gauge("reg_loss", "Weight-decay (L2) loss of the last training step")
        self.total_loss = gauge("total_loss", "loss + reg_loss of the last training step")
        self.learning_rate = gauge("learning_rate", "Learning rate of the last training step")
        self.global_step = gauge("global_step", "Training steps done, restored on resume")
        self.epoch = gauge("epoch", "Epochs done (fractional)")
        # With global_step, what a progress bar or an ETA needs (the operator's status.progress).
        self.max_steps = gauge("max_steps", "Global step at which training stops")
        # No sample before the first evaluation: a 0 would read as "accuracy 0".
        self._eval_top1 = Gauge(
            f"{PREFIX}_eval_top1_ratio", "Top-1 accuracy of the last evaluation", n, registry=r
        )
        self._eval_top5 = Gauge(
            f"{PREFIX}_eval_top5_ratio", "Top-5 accuracy of the last evaluation", n, registry=r
        )
        self.step_seconds = Histogram(
            f"{PREFIX}_step_duration_seconds",
            "Wall time of one training step (host loop time divided by its steps)",
            n,
            buckets=STEP_BUCKETS,
            registry=r,
        ).labels(**labels)
        self._info = Info(f"{PREFIX}_trainer", "Trainer build and placement", n, registry=r)
        self._labels = labels

    def set_info(self, accelerator: str, tensorflow_version: str, world_size: int) -> None:
        self._info.labels(**self._labels).info(
            {
                "accelerator": accelerator,
                "tensorflow_version": tensorflow_version,
                "world_size": str(world_size),
            }
        )

    def set_eval(self, top1: float, top5: float) -> None:
        self._eval_top1.labels(**self._labels).set(top1)
        self._eval_top5.labels(**self._labels).set(top5)

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, addr=address, registry=self.registry)
