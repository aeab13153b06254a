"""Prometheus metrics: one prefix (densenet_), base units, counters end in _total.

The names are densenet_contract.metrics': the operator reads some back into a job's
status.progress and the chart's alerts and dashboards query them. A private registry keeps the
exposition to our own metrics. Every metric carries the labels job_name, job_namespace and rank
(from the operator's environment, see env.py): a handful of values per job, never per step or
per image.
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

from densenet_contract import metrics as names

LABELS = names.TRAINER_LABELS
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
            return Gauge(name, doc, n, registry=r).labels(**labels)

        self.images = Counter(
            names.IMAGES_PROCESSED,
            "Training images processed by the whole job (counted by every rank)",
            n,
            registry=r,
        ).labels(**labels)
        self.images_per_second = gauge(
            names.IMAGES_PER_SECOND,
            "Training throughput of the whole job over the last host loop, images per second",
        )
        self.loss = gauge(names.LOSS, "Cross-entropy loss of the last training step")
        self.reg_loss = gauge(names.REG_LOSS, "Weight-decay (L2) loss of the last training step")
        self.total_loss = gauge(names.TOTAL_LOSS, "loss + reg_loss of the last training step")
        self.learning_rate = gauge(names.LEARNING_RATE, "Learning rate of the last training step")
        self.global_step = gauge(names.GLOBAL_STEP, "Training steps done, restored on resume")
        self.epoch = gauge(names.EPOCH, "Epochs done (fractional)")
        # With global_step, what a progress bar or an ETA needs (the operator's status.progress).
        self.max_steps = gauge(names.MAX_STEPS, "Global step at which training stops")
        # The operator turns an increase into an Event (the log line says which checkpoint).
        self.checkpoint_fallbacks = Counter(
            names.CHECKPOINT_FALLBACKS,
            "Unreadable checkpoints skipped on resume in favour of an older one",
            n,
            registry=r,
        ).labels(**labels)
        self.resumed_step = gauge(
            names.RESUMED_STEP, "Global step this process resumed from (0: it started fresh)"
        )
        # No sample before the first checkpoint: a 0 would read as "checkpointed at step 0".
        self.checkpoint_step = Gauge(
            names.CHECKPOINT_STEP,
            "Global step of the newest checkpoint (written, or restored at start)",
            n,
            registry=r,
        )
        self.checkpoint_time = Gauge(
            names.CHECKPOINT_TIME,
            "Unix time the newest checkpoint was written",
            n,
            registry=r,
        )
        self.first_step_time = Gauge(
            names.FIRST_STEP_TIME,
            "Unix time this process finished its first training step (after a start or resume)",
            n,
            registry=r,
        )
        # No sample before the first evaluation: a 0 would read as "accuracy 0".
        self._eval_top1 = Gauge(
            names.EVAL_TOP1, "Top-1 accuracy of the last evaluation", n, registry=r
        )
        self._eval_top5 = Gauge(
            names.EVAL_TOP5, "Top-5 accuracy of the last evaluation", n, registry=r
        )
        self.step_seconds = Histogram(
            names.STEP_DURATION,
            "Wall time of one training step (host loop time divided by its steps)",
            n,
            buckets=STEP_BUCKETS,
            registry=r,
        ).labels(**labels)
        self._info = Info(names.TRAINER_INFO, "Trainer build and placement", n, registry=r)
        self._labels = labels

    def set_info(self, accelerator: str, tensorflow_version: str, world_size: int) -> None:
        self._info.labels(**self._labels).info(
            {
                "accelerator": accelerator,
                "tensorflow_version": tensorflow_version,
                "world_size": str(world_size),
            }
        )

    def set_checkpoint(self, step: int, written_at: float) -> None:
        self.checkpoint_step.labels(**self._labels).set(step)
        self.checkpoint_time.labels(**self._labels).set(written_at)

    def first_step_done(self, at: float) -> None:
        self.first_step_time.labels(**self._labels).set(at)

    def set_eval(self, top1: float, top5: float) -> None:
        self._eval_top1.labels(**self._labels).set(top1)
        self._eval_top5.labels(**self._labels).set(top5)

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, addr=address, registry=self.registry)
