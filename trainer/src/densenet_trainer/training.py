"""The host side of training: host loops, logs, metrics, checkpoints, evaluation, SIGTERM."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import time

import numpy as np
import tensorflow as tf

from . import data, logs
from .checkpoints import Checkpointer, unreadable_line, written_at
from .config import TrainerConfig
from .devices.base import DeviceContext
from .errors import ExitCode, UserError
from .evaluation import evaluate_task, load_weights
from .export import export
from .inputs import distributed_dataset, epoch_size_note, steps_per_epoch
from .metrics import TrainerMetrics
from .preemption import PreemptionWatcher
from .schedules import make_schedule
from .task import LOSS, REG_LOSS, STOP, TOTAL_LOSS, ClassificationTask

BENCHMARK_WARMUP_LOOPS = 1  # tracing and first-step allocation are not throughput


def weights_digest(weights: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for weight in weights:
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _to_next(step: int, every: int) -> int:
    return every - step % every


class Trainer:
    def __init__(
        self,
        config: TrainerConfig,
        device: DeviceContext,
        log: logs.RunLog,
        metrics: TrainerMetrics,
    ) -> None:
        self.config = config
        self.device = device
        self.log = log
        self.metrics = metrics
        self.benchmark = config.run.mode == "benchmark"
        self.global_batch = config.data.batch_size * device.num_replicas
        self.steps_per_epoch = steps_per_epoch(config, self.global_batch)
        note = epoch_size_note(config)
        if note:
            log(note)
        run = config.run
        self.total_steps = run.max_train_steps or max(
            1, math.ceil(run.max_epochs * self.steps_per_epoch)
        )
        self.schedule = make_schedule(config.optim, self.steps_per_epoch, self.total_steps)
        self.task = ClassificationTask(config, device, self.schedule)
        self.checkpoints_on = run.do_checkpoint and not self.benchmark
        self.checkpointer = Checkpointer(
            self.task.checkpoint, run.log_dir, device.is_chief, run.keep_checkpoints
        )
        # TensorBoard is optional (tensorflow-cpu does not pull it in): no summaries then.
        self.summary = (
            tf.summary.create_file_writer(os.path.join(run.log_dir, "summaries"))
            if device.is_chief and not self.benchmark and importlib.util.find_spec("tensorboard")
            else None
        )
        self._eval_loop = None

    def _epoch(self, step: int) -> float:
        return step / self.steps_per_epoch

    def _restore(self) -> None:
        if self.benchmark:
            return
        latest = self.checkpointer.restore_latest(on_unreadable=self._unreadable)
        step = int(self.task.global_step.numpy())
        self.metrics.resumed_step.set(step if latest else 0)
        if latest:
            self.log(f"resumed from {latest} at step {step}")
            self.checkpointer.last_saved_step = step
            self.metrics.set_checkpoint(step, written_at(latest))
        elif self.config.run.pretrained:
            source = load_weights(
                self.task, self.config.run.pretrained, "pretrained", with_step=False
            )
            self.log(f"warm start from {source}")
        if self.device.broadcast_variables is not None:
            self.device.broadcast_variables(self.task.model.variables)

    def _unreadable(self, path: str, reason: str, older: str) -> None:
        self.log(unreadable_line(path, reason, older))
        self.metrics.checkpoint_fallbacks.inc()

    def _boundaries(self) -> list[int]:
        run = self.config.run
        every = [run.display_every, self.steps_per_epoch, run.save_summary_steps]
        if self.checkpoints_on:
            every.append(run.save_checkpoints_steps)
        if run.mode == "train_and_evaluate":
            every.append(self._eval_every)
        return every

    @property
    def _eval_every(self) -> int:
        return max(1, round(self.config.run.epochs_between_evals * self.steps_per_epoch))

    def evaluate(self, step: int) -> bool:
        """Evaluate and log; False when a SIGTERM cut the pass short (nothing logged)."""
        if self._eval_loop is None:
            self._eval_loop = self.task.make_eval_loop()
        self.log(f"evaluating at step {step}")
        result = evaluate_task(self.task, self.config, self.device, self._eval_loop)
        if result.interrupted:
            self.log(f"evaluation at step {step} stopped after {result.examples} images: SIGTERM")
            return False
        self.metrics.set_eval(result.top1, result.top5)
        self.log(logs.eval_line(step, result.top1, result.top5, result.examples))
        return True

    def _save(self, step: int) -> None:
        if self.checkpoints_on:
            path = self.checkpointer.save(step)
            if path:
                self.log(f"checkpoint: {path}")
                self.metrics.set_checkpoint(step, written_at(path))

    def _write_summaries(self, step: int, values: list[float], lr: float) -> None:
        if self.summary is None:
            return
        with self.summary.as_default(step=step):
            tf.summary.scalar("loss", values[LOSS])
            tf.summary.scalar("reg_loss", values[REG_LOSS])
            tf.summary.scalar("total_loss", values[TOTAL_LOSS])
            tf.summary.scalar("learning_rate", lr)
        self.summary.flush()

    def run(self) -> ExitCode:
        run, m = self.config.run, self.metrics
        watcher = PreemptionWatcher(self.task.stop_requested)
        watcher.install()
        self._restore()
        step = int(self.task.global_step.numpy())
        m.global_step.set(step)
        m.max_steps.set(self.total_steps)
        if step >= self.total_steps:
            self.log(f"already at step {step} of {self.total_steps}: nothing to train")
            return self._finish(step)
        # A new seed per (re)start: the data order moves on instead of replaying.
        seed = self.config.data.seed + step
        dataset = distributed_dataset(self.config, self.device, training=True, seed=seed)
        loop = self.task.make_train_loop()
        boundaries = self._boundaries()
        with data.translate_data_errors(self.config.data.data_dir, "train"):
            iterator = iter(dataset)
        display_images, display_start = 0, time.perf_counter()
        bench_images, bench_start, loops = 0, 0.0, 0
        while step < self.total_steps:
            n = min(
                [run.iterations_per_loop, self.total_steps - step]
                + [_to_next(step, b) for b in boundaries]
            )
            started = time.perf_counter()
            with data.translate_data_errors(self.config.data.data_dir, "train"):
                done_t, values_t = loop(iterator, tf.constant(n, tf.int64))
            values = [float(v) for v in values_t.numpy()]
            done = int(done_t)
            elapsed = time.perf_counter() - started
            step += done
            loops += 1
            if loops == 1:
                m.first_step_done(time.time())
            images = done * self.global_batch
            lr = float(self.schedule(tf.constant(step - 1)))
            if not all(math.isfinite(v) for v in values[:STOP]):
                raise UserError(
                    f"loss is {values[TOTAL_LOSS]} at step {step}: training diverged; "
                    "lower --lr, raise --warmup_epochs or drop --fp16",
                    ExitCode.DIVERGED,
                )
            m.images.inc(images)
            m.images_per_second.set(images / elapsed if elapsed > 0 else 0.0)
            for _ in range(done):
                m.step_seconds.observe(elapsed / done)
            m.loss.set(values[LOSS])
            m.reg_loss.set(values[REG_LOSS])
            m.total_loss.set(values[TOTAL_LOSS])
            m.learning_rate.set(lr)
            m.global_step.set(step)
            m.epoch.set(self._epoch(step))
            if loops > BENCHMARK_WARMUP_LOOPS:
                bench_images += images
                bench_start = bench_start or started
            display_images += images
            if step % run.display_every == 0 or step >= self.total_steps:
                now = time.perf_counter()
                fps = display_images / max(now - display_start, 1e-9)
                self.log(
                    logs.train_line(
                        step=step,
                        epoch=self._epoch(step),
                        fps=fps,
                        loss=values[LOSS],
                        reg=values[REG_LOSS],
                        total=values[TOTAL_LOSS],
                        lr=lr,
                    )
                )
                display_images, display_start = 0, now
            if step % run.save_summary_steps == 0:
                self._write_summaries(step, values, lr)
            if values[STOP] > 0:  # summed over workers: all of them stop at this step
                return self._preempted(step)
            if step % run.save_checkpoints_steps == 0 or step % self.steps_per_epoch == 0:
                self._save(step)
            evaluating = run.mode == "train_and_evaluate" and step % self._eval_every == 0
            if evaluating and not self.evaluate(step):
                return self._preempted(step)
        if self.benchmark:
            elapsed = time.perf_counter() - bench_start if bench_start else 0.0
            rate = bench_images / elapsed if elapsed > 0 else float("nan")
            self.log(
                f"benchmark: images/sec: {rate:.1f} (global batch {self.global_batch}, "
                f"{self.device.num_replicas} replica(s), {self.device.kind}, "
                f"{run.precision})"
            )
            return ExitCode.OK
        return self._finish(step)

    def _preempted(self, step: int) -> ExitCode:
        code = int(ExitCode.PREEMPTED)
        if self.checkpoints_on:
            self._save(step)
            self.log(
                f"preempted at step {step}: checkpoint written, exiting with {code} "
                "(restart to resume)"
            )
        else:
            why = "benchmark mode" if self.benchmark else "--do_checkpoint false"
            self.log(
                f"preempted at step {step}: no checkpoint written ({why}), exiting with {code}; "
                "a restart resumes from the last checkpoint in --log_dir, if any"
            )
        return ExitCode.PREEMPTED

    def _finish(self, step: int) -> ExitCode:
        """The normal end, which every rank reaches together: whatever reads the model across
        workers (a synchronised variable such as batch norm's moving mean is all-reduced when
        read) is done by all of them, and none leaves before the others are done. A worker
        that exits first leaves the rest in a collective that can only fail, after the
        coordination service's heartbeat timeout."""
        run = self.config.run
        self._save(step)
        weights = self.task.model.get_weights()  # a collective read: on every rank
        # Every rank prints it: equal digests prove the replicas stayed in sync.
        self.log(f"weights sha256: {weights_digest(weights)} step: {step}")
        evaluating = run.mode == "train_and_evaluate" and step % self._eval_every != 0
        if evaluating and not self.evaluate(step):
            return self._preempted(step)
        if run.export and self.device.is_chief:
            path = export(self.task, os.path.join(run.log_dir, "saved_model"), weights)
            self.log(f"saved model: {path}")
        self.task.barrier()  # the others wait out the chief's export, then all leave
        return ExitCode.OK
