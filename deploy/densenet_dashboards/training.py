"""The "DenseNet training" dashboard: throughput, loss, learning rate, step time and accuracy of
every training job, and the operator's restarts, phases and errors.

Trainer series carry job_namespace, job_name and rank; every rank counts the whole job's images,
so a job's throughput is the average over its ranks, never the sum. Loss, learning rate and
accuracy come from rank 0 (the chief), whose values the trainer's log lines show.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

UID = "densenet-training"
DESCRIPTION = "Throughput, loss and accuracy of DenseNet-121 training jobs, and their operator."
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# The dashboard's variables, applied to every trainer series.
JOB = 'job_namespace=~"$namespace", job_name=~"$job"'
BY_JOB = "by (job_namespace, job_name)"
JOB_LEGEND = "{{job_namespace}}/{{job_name}}"
IMAGES_PER_SECOND = "suffix: img/s"


def _query(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .range()
        .datasource(DATASOURCE)
    )


def _timeseries(title: str, description: str, unit: str, width: int = 12) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
    )


def _variables() -> list[dash.DatasourceVariable | dash.QueryVariable]:
    def label_values(name: str, label: str, query: str) -> dash.QueryVariable:
        return (
            dash.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )

    return [
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        label_values("namespace", "Namespace", "label_values(densenet_global_step, job_namespace)"),
        label_values(
            "job",
            "Job",
            'label_values(densenet_global_step{job_namespace=~"$namespace"}, job_name)',
        ),
    ]


def _throughput() -> list[dash.Panel]:
    job_fps = f"avg {BY_JOB} (rate(densenet_images_processed_total{{{JOB}}}[$__rate_interval]))"
    return [
        stat.Panel()
        .title("Total FPS")
        .description("Training images per second of all selected jobs together.")
        .datasource(DATASOURCE)
        .unit(IMAGES_PER_SECOND)
        .span(4)
        .height(8)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(_query(f"sum({job_fps})", "total")),
        _timeseries(
            "FPS per job",
            "Training images per second of each job (every rank counts the whole job's images).",
            IMAGES_PER_SECOND,
            width=10,
        ).with_target(_query(job_fps, JOB_LEGEND)),
        _timeseries(
            "FPS per rank",
            "The job's throughput as each rank measured it over its last host loop: the ranks "
            "of a synchronous job agree, so one rank apart from the others points at that rank.",
            IMAGES_PER_SECOND,
            width=10,
        ).with_target(_query(f"densenet_images_per_second{{{JOB}}}", "{{job_name}} rank {{rank}}")),
    ]


def _training() -> list[dash.Panel]:
    chief = f'{JOB}, rank="0"'
    return [
        _timeseries(
            "Loss",
            "Cross-entropy loss and total loss (with weight decay) of the last training step.",
            "none",
        )
        .with_target(_query(f"max {BY_JOB} (densenet_loss{{{chief}}})", f"{JOB_LEGEND} loss"))
        .with_target(
            _query(
                f"max {BY_JOB} (densenet_total_loss{{{chief}}})",
                f"{JOB_LEGEND} total_loss",
                "B",
            )
        ),
        _timeseries(
            "Learning rate", "Learning rate of the last training step.", "none"
        ).with_target(_query(f"max {BY_JOB} (densenet_learning_rate{{{chief}}})", JOB_LEGEND)),
        _timeseries(
            "Step time p50 and p95",
            "Seconds per training step over all ranks of the job (host loop time / steps).",
            "s",
        )
        .with_target(
            _query(
                "histogram_quantile(0.5, sum by (job_namespace, job_name, le) "
                f"(rate(densenet_step_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))",
                f"{JOB_LEGEND} p50",
            )
        )
        .with_target(
            _query(
                "histogram_quantile(0.95, sum by (job_namespace, job_name, le) "
                f"(rate(densenet_step_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))",
                f"{JOB_LEGEND} p95",
                "B",
            )
        ),
        _timeseries(
            "Eval top-1 accuracy",
            "Top-1 (and top-5) accuracy of the last evaluation; empty until the first one.",
            "percentunit",
        )
        .min(0)
        .max(1)
        .with_target(
            _query(f"max {BY_JOB} (densenet_eval_top1_ratio{{{chief}}})", f"{JOB_LEGEND} top-1")
        )
        .with_target(
            _query(
                f"max {BY_JOB} (densenet_eval_top5_ratio{{{chief}}})",
                f"{JOB_LEGEND} top-5",
                "B",
            )
        ),
        _timeseries("Epoch", "Epochs done (fractional), restored on resume.", "none").with_target(
            _query(f"max {BY_JOB} (densenet_epoch{{{JOB}}})", JOB_LEGEND)
        ),
        _timeseries("Global step", "Training steps done, restored on resume.", "none").with_target(
            _query(f"max {BY_JOB} (densenet_global_step{{{JOB}}})", JOB_LEGEND)
        ),
    ]


def _operator() -> list[dash.Panel]:
    return [
        _timeseries(
            "Job restarts per hour",
            "Whole-job restarts by the operator (crashes, lost pods, preemptions).",
            "none",
            width=8,
        ).with_target(
            _query(
                "sum by (namespace, accelerator) (increase("
                'densenet_operator_jobs_restarted_total{namespace=~"$namespace"}[1h]))',
                "{{namespace}} {{accelerator}}",
            )
        ),
        _timeseries(
            "Jobs by phase",
            "DenseNetTrainingJobs in each phase, in every watched namespace.",
            "none",
            width=8,
        )
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL))
        .with_target(_query("sum by (phase) (densenet_operator_jobs)", "{{phase}}")),
        _timeseries(
            "Operator reconcile errors",
            "Handler failures per second; kopf retries them.",
            "none",
            width=8,
        ).with_target(
            _query(
                "sum by (handler) "
                "(rate(densenet_operator_reconcile_errors_total[$__rate_interval]))",
                "{{handler}}",
            )
        ),
    ]


def _goodput() -> list[dash.Panel]:
    chief = f'{JOB}, rank="0"'
    return [
        _timeseries(
            "Last checkpoint step",
            "Step of the newest checkpoint (written, or restored at start); with Global step, "
            "what a restart now would redo.",
            "none",
            width=8,
        ).with_target(_query(f"max {BY_JOB} (densenet_checkpoint_step{{{chief}}})", JOB_LEGEND)),
        _timeseries(
            "Recovery time",
            "Seconds from a whole-job restart to the new attempt's first step (the operator's "
            "status.goodput); empty until a restart has recovered.",
            "s",
            width=8,
        ).with_target(
            _query(
                "histogram_quantile(0.5, sum by (namespace, le) (rate("
                'densenet_operator_recovery_seconds_bucket{namespace=~"$namespace"}[1h])))',
                "{{namespace}} p50",
            )
        ),
        _timeseries(
            "Steps lost per hour",
            "Training steps redone after restarts: the step reached minus the step resumed from.",
            "none",
            width=8,
        ).with_target(
            _query(
                "sum by (namespace, accelerator) (increase("
                'densenet_operator_steps_lost_total{namespace=~"$namespace"}[1h]))',
                "{{namespace}} {{accelerator}}",
            )
        ),
    ]


def build() -> dash.Dashboard:
    """The dashboard, ready for `.build()` and JSON encoding."""
    board = (
        dash.Dashboard("DenseNet training")
        .uid(UID)
        .description(DESCRIPTION)
        .tags(["densenet", "training"])
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone(common.TimeZoneBrowser)
        .variables(_variables())
    )
    ids = iter(range(1, 100))
    for title, panels in (
        ("Throughput", _throughput()),
        ("Training", _training()),
        ("Operator", _operator()),
        ("Goodput", _goodput()),
    ):
        board = board.with_row(dash.Row(title).id(next(ids)))
        for panel in panels:
            board = board.with_panel(panel.id(next(ids)))
    return board
