"""The driver: pick the device, set precision, start metrics, run the mode."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from . import compat, data, departure, devices, env, logs, ownership
from .config import TrainerConfig
from .errors import ExitCode, UserError
from .evaluation import evaluate_saved_model, evaluate_task, is_saved_model, load_weights
from .metrics import TrainerMetrics
from .schedules import make_schedule
from .task import ClassificationTask
from .training import Trainer


def _start_metrics(config: TrainerConfig, rank: int) -> TrainerMetrics:
    metrics = TrainerMetrics(env.labels(rank))
    port = config.run.metrics_port
    if port:
        try:
            metrics.serve(port, config.run.metrics_address)
        except OSError as exc:
            raise UserError(
                f"--metrics_port {port}: cannot listen on {config.run.metrics_address} "
                f"({exc.strerror or exc}); pick a free port or 0 to turn metrics off"
            ) from exc
    return metrics


def _write_config(config: TrainerConfig) -> None:
    os.makedirs(config.run.log_dir, exist_ok=True)
    with open(os.path.join(config.run.log_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)


def _evaluate(
    config: TrainerConfig, device: devices.DeviceContext, log: logs.RunLog, metrics: TrainerMetrics
) -> ExitCode:
    source = config.run.eval_from or config.run.log_dir
    flag = config.run.eval_flag or "log_dir"
    task = None
    if is_saved_model(source):
        result = evaluate_saved_model(source, config)
    else:
        task = ClassificationTask(config, device, make_schedule(config.optim, 1, 1))
        loaded = load_weights(task, source, flag, with_step=True)
        log(f"evaluating {loaded}")
        result = evaluate_task(task, config, device)
    metrics.set_eval(result.top1, result.top5)
    step = 0 if task is None else int(task.global_step.numpy())
    log(logs.eval_line(step, result.top1, result.top5, result.examples))
    return ExitCode.OK


def _check_data(config: TrainerConfig) -> None:
    """Missing splits fail at start, not after hours of training."""
    if config.data.synthetic:
        return
    mode = config.run.mode
    if mode != "evaluate":
        data.check_split(config.data.data_dir, "train", f"--mode {mode}")
    if mode in ("evaluate", "train_and_evaluate"):
        data.check_split(config.data.data_dir, "validation", f"--mode {mode}")


def run(config: TrainerConfig) -> ExitCode:
    # MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    device = devices.create(config.run)
    _check_data(config)
    compat.set_precision(config.run.precision)
    metrics = _start_metrics(config, device.rank)
    metrics.set_info(device.kind, tf.__version__, device.num_workers)
    training = config.run.mode != "evaluate"
    if training and config.run.mode != "benchmark":
        # Before anything is written to or restored from --log_dir: not another job's.
        ownership.claim(config.run.log_dir, env.job_identity(), device.is_chief)
    log = logs.RunLog(config.run.log_dir, config.run.log_name, device.is_chief)
    # TensorFlow is loaded and every worker has joined: the rest of a start is the model,
    # the restore and the first step (benchmarks/recovery.py times each from these lines).
    log(logs.started_line(device.rank, device.num_workers, device.kind, tf.__version__))
    try:
        if not training:
            code = _evaluate(config, device, log, metrics)
        else:
            if device.is_chief and config.run.mode != "benchmark":
                _write_config(config)
            code = Trainer(config, device, log, metrics).run()
        # Ends every rank reaches together; after a failure nobody is waited for.
        ending_together = code in (ExitCode.OK, ExitCode.PREEMPTED)
        if device.leave is not None and ending_together and (stayed := device.leave()):
            log(f"leaving while {', '.join(stayed)} still run (waited {departure.WAIT_SECONDS:g}s)")
        return code
    finally:
        log.close()
