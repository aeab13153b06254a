"""Prometheus metric names: what the trainer and the operator export, what the operator reads
back from the chief trainer (status.progress), and what the chart's alert rules and dashboards
query (checked against these names by tests/contract).

Names are as given to prometheus_client; :func:`series` gives the names a scrape shows (a
counter gains ``_total``, a histogram ``_bucket``/``_sum``/``_count``, an info ``_info``).
"""

from __future__ import annotations

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"
INFO = "info"
_SUFFIXES = {
    COUNTER: ("_total",),
    GAUGE: ("",),
    HISTOGRAM: ("_bucket", "_sum", "_count"),
    INFO: ("_info",),
}

# --- the trainer (every process, on its --metrics_port) ---
PREFIX = "densenet"
# Labels of every trainer series, from the operator's environment (env.JOB_NAME, ...).
JOB_NAME_LABEL = "job_name"
JOB_NAMESPACE_LABEL = "job_namespace"
RANK_LABEL = "rank"
TRAINER_LABELS = (JOB_NAME_LABEL, JOB_NAMESPACE_LABEL, RANK_LABEL)

IMAGES_PROCESSED = "densenet_images_processed"
IMAGES_PER_SECOND = "densenet_images_per_second"
LOSS = "densenet_loss"
REG_LOSS = "densenet_reg_loss"
TOTAL_LOSS = "densenet_total_loss"
LEARNING_RATE = "densenet_learning_rate"
GLOBAL_STEP = "densenet_global_step"
EPOCH = "densenet_epoch"
MAX_STEPS = "densenet_max_steps"
EVAL_TOP1 = "densenet_eval_top1_ratio"
EVAL_TOP5 = "densenet_eval_top5_ratio"
STEP_DURATION = "densenet_step_duration_seconds"
# Unreadable checkpoints a resume skipped for an older one (the operator makes it an Event).
CHECKPOINT_FALLBACKS = "densenet_checkpoint_fallbacks"
TRAINER_INFO = "densenet_trainer"
# The checkpoint state a scheduler or the operator can use: where this process resumed, and
# the newest checkpoint (written or restored): its step and when it was written.
RESUMED_STEP = "densenet_resumed_step"
CHECKPOINT_STEP = "densenet_checkpoint_step"
CHECKPOINT_TIME = "densenet_checkpoint_timestamp_seconds"
# When this process finished its first step (after a start or a resume): the operator times a
# restart's recovery to it.
FIRST_STEP_TIME = "densenet_first_step_timestamp_seconds"

TRAINER: dict[str, str] = {
    IMAGES_PROCESSED: COUNTER,
    IMAGES_PER_SECOND: GAUGE,
    LOSS: GAUGE,
    REG_LOSS: GAUGE,
    TOTAL_LOSS: GAUGE,
    LEARNING_RATE: GAUGE,
    GLOBAL_STEP: GAUGE,
    EPOCH: GAUGE,
    MAX_STEPS: GAUGE,
    EVAL_TOP1: GAUGE,
    EVAL_TOP5: GAUGE,
    STEP_DURATION: HISTOGRAM,
    CHECKPOINT_FALLBACKS: COUNTER,
    TRAINER_INFO: INFO,
    RESUMED_STEP: GAUGE,
    CHECKPOINT_STEP: GAUGE,
    CHECKPOINT_TIME: GAUGE,
    FIRST_STEP_TIME: GAUGE,
}

# --- the operator (its --metrics-port) ---
OPERATOR_PREFIX = "densenet_operator"
# Labels of the per-job counters (the job's namespace, not the operator's).
OPERATOR_JOB_LABELS = ("namespace", "accelerator")
HANDLER_LABEL = "handler"  # reconcile duration and errors: job, pod, resync, timer
RESULT_LABEL = "result"  # progress reads: ok, failed, skipped
PHASE_LABEL = "phase"  # jobs per phase

JOBS_CREATED = "densenet_operator_jobs_created"
JOBS_SUCCEEDED = "densenet_operator_jobs_succeeded"
JOBS_FAILED = "densenet_operator_jobs_failed"
JOBS_RESTARTED = "densenet_operator_jobs_restarted"
PODS_CREATED = "densenet_operator_pods_created"
RECONCILE_DURATION = "densenet_operator_reconcile_duration_seconds"
RECONCILE_ERRORS = "densenet_operator_reconcile_errors"
PROGRESS_READS = "densenet_operator_progress_reads"
JOBS_BY_PHASE = "densenet_operator_jobs"
LEADER = "densenet_operator_leader"  # 1 on the replica that holds the Lease and acts
JOBS_STALLED = "densenet_operator_jobs_stalled"  # jobs whose Stalled condition is True
# Goodput: each restart's time from the restart to the first new step, and the steps it lost.
RECOVERY_DURATION = "densenet_operator_recovery_seconds"
STEPS_LOST = "densenet_operator_steps_lost"

OPERATOR: dict[str, str] = {
    JOBS_CREATED: COUNTER,
    JOBS_SUCCEEDED: COUNTER,
    JOBS_FAILED: COUNTER,
    JOBS_RESTARTED: COUNTER,
    PODS_CREATED: COUNTER,
    RECONCILE_DURATION: HISTOGRAM,
    RECONCILE_ERRORS: COUNTER,
    PROGRESS_READS: COUNTER,
    JOBS_BY_PHASE: GAUGE,
    LEADER: GAUGE,
    JOBS_STALLED: GAUGE,
    RECOVERY_DURATION: HISTOGRAM,
    STEPS_LOST: COUNTER,
}


def series(metrics: dict[str, str]) -> set[str]:
    """The sample names a scrape shows for ``metrics`` (name -> kind)."""
    return {name + suffix for name, kind in metrics.items() for suffix in _SUFFIXES[kind]}
