"""The image-classification task: model, optimizer, losses, and the compiled train/eval loops.

Everything here is TensorFlow graph code; the host-side loop (logging, checkpoints, signals)
lives in :mod:`densenet_trainer.training`. Written against what Keras 2 and Keras 3 share,
with the differences in :mod:`densenet_trainer.compat`.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from . import compat
from .config import TrainerConfig
from .devices.base import DeviceContext
from .model import build_model
from .schedules import Schedule, StepSchedule

SUM = tf.distribute.ReduceOp.SUM
# Index of each value in the vector the train loop returns.
LOSS, REG_LOSS, TOTAL_LOSS, STOP = range(4)
# ... and in the one the eval loop returns.
TOP1, TOPK, EXAMPLES, EVAL_STOP = range(4)


def across_processes(
    values: tf.Tensor, all_reduce_sum: Callable[[tf.Tensor], tf.Tensor] | None, processes: int
) -> tf.Tensor:
    """[loss, reg_loss, total_loss, stop] of this process -> of the job, where the strategy
    spans one process only (Ascend): losses averaged, stop summed, so every process logs the
    same losses and stops at the same step."""
    if all_reduce_sum is None:
        return values
    summed = all_reduce_sum(values)
    return tf.concat([summed[:STOP] / float(processes), summed[STOP:]], 0)


def make_optimizer(config: TrainerConfig, learning_rate: Any) -> Any:
    o = config.optim
    if o.optimizer == "sgd":
        opt = compat.keras.optimizers.SGD(learning_rate, momentum=o.momentum, nesterov=o.nesterov)
    elif o.optimizer == "adam":
        opt = compat.keras.optimizers.Adam(learning_rate)
    else:
        opt = compat.keras.optimizers.RMSprop(learning_rate, momentum=o.momentum)
    if config.run.precision == "fp16":
        opt = compat.loss_scale_optimizer(opt)
    return opt


class ClassificationTask:
    """Holds the model, optimizer and step counter (all checkpointed) and builds the loops."""

    def __init__(self, config: TrainerConfig, device: DeviceContext, schedule: Schedule) -> None:
        self.config = config
        self.device = device
        self.strategy = device.strategy
        self.schedule = schedule
        # Set from a signal-watching thread while a loop runs; read once per step.
        with tf.device("/cpu:0"):
            self.stop_requested = tf.Variable(False, trainable=False, name="stop_requested")
        with self.strategy.scope():
            self.model = build_model(config.model, config.data.num_classes, config.data.image_size)
            self.global_step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self.optimizer = make_optimizer(config, StepSchedule(schedule, self.global_step))
            compat.build_optimizer(self.optimizer, self.model.trainable_variables)
        self._kernels = [v for v in self.model.trainable_variables if "kernel" in v.name]
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, global_step=self.global_step
        )

    @property
    def replica_batch_size(self) -> int:
        return self.config.data.batch_size

    @property
    def global_batch_size(self) -> int:
        return self.config.data.batch_size * self.device.num_replicas

    def losses(self, labels: tf.Tensor, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(cross-entropy, L2 regularisation) of one replica, scaled so that summing over
        the replicas of the strategy gives the global-batch mean and the full penalty."""
        num_classes = self.config.data.num_classes
        smoothing = self.config.optim.label_smoothing
        targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if smoothing > 0:
            targets = targets * (1.0 - smoothing) + smoothing / num_classes
        per_example = tf.nn.softmax_cross_entropy_with_logits(
            labels=targets, logits=tf.cast(logits, tf.float32)
        )
        in_sync = self.strategy.num_replicas_in_sync
        ce = tf.nn.compute_average_loss(
            per_example, global_batch_size=self.replica_batch_size * in_sync
        )
        o = self.config.optim
        reg = weight_penalty(self._kernels, o.weight_decay, o.weight_decay_convention)
        return ce, reg / float(in_sync)

    def _train_step(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        model, opt = self.model, self.optimizer
        fp16 = self.config.run.precision == "fp16"
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            ce, reg = self.losses(labels, logits)
            total = ce + reg
            objective = compat.scale_loss(opt, total) if fp16 else total
        grads = tape.gradient(objective, model.trainable_variables)
        if fp16:
            grads = compat.unscale_gradients(opt, grads)
        if self.device.all_reduce_gradients is not None:
            grads = self.device.all_reduce_gradients(grads)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        stop = tf.cast(self.stop_requested.read_value(), tf.float32)
        return tf.stack([ce, reg, total, stop])

    def make_train_loop(self) -> Callable[[Any, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
        """``loop(iterator, n)`` runs up to n steps in one host call and returns
        (steps done, [loss, reg_loss, total_loss, stop] of the last step). It stops early
        after a step whose loss is not finite or when any replica was asked to stop; the
        stop flag is summed across workers with the losses so all of them stop together."""
        strategy = self.strategy
        all_reduce_sum = self.device.all_reduce_sum
        step = self._train_step
        if self.config.run.xla:
            step = tf.function(step, jit_compile=True)

        def loop(iterator: Any, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            done = tf.constant(0, tf.int64)
            values = tf.zeros([4])
            for _ in tf.range(n):
                per_replica = strategy.run(step, args=next(iterator))
                values = strategy.reduce(SUM, per_replica, axis=None)
                values = across_processes(values, all_reduce_sum, self.device.num_workers)
                self.global_step.assign_add(1)
                done += 1
                finite = tf.reduce_all(tf.math.is_finite(values[:STOP]))
                if values[STOP] > 0 or not finite:
                    break
            return done, values

        return tf.function(loop)

    def barrier(self) -> None:
        """Return once every process of the job has called it: a sum of ones across them
        (the strategy's replicas, then the processes where it does not span them)."""
        strategy, all_reduce_sum = self.strategy, self.device.all_reduce_sum

        @tf.function
        def ones() -> tf.Tensor:
            total = strategy.reduce(SUM, strategy.run(lambda: tf.ones([1])), axis=None)
            return total if all_reduce_sum is None else all_reduce_sum(total)

        ones()

    def make_eval_loop(self) -> Callable[[Any], tf.Tensor]:
        """``loop(distributed_dataset)`` returns [top-1 hits, top-5 hits, examples, stop] of
        the whole job. A SIGTERM ends the pass after the batch in progress (stop > 0); the
        flag is summed across workers with the counts, so all of them leave together. Where
        processes hold uneven shards (Ascend), they sum once, after the pass."""
        strategy = self.strategy
        k = min(5, self.config.data.num_classes)

        def step(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
            stop = tf.cast(self.stop_requested.read_value(), tf.float32)
            return tf.concat([hits(self.model(images, training=False), labels, k), [stop]], 0)

        def loop(dataset: Any) -> tf.Tensor:
            iterator = iter(dataset)
            totals = tf.zeros([4])
            more = tf.constant(True)
            while more:
                batch = iterator.get_next_as_optional()
                more = batch.has_value()
                if more:
                    values = strategy.reduce(
                        SUM, strategy.run(step, args=batch.get_value()), axis=None
                    )
                    totals = tf.concat([totals[:EVAL_STOP] + values[:EVAL_STOP], values[3:]], 0)
                    more = values[EVAL_STOP] <= 0
            if self.device.all_reduce_sum is not None:
                totals = self.device.all_reduce_sum(totals)
            return totals

        return tf.function(loop)


def weight_penalty(kernels: list, weight_decay: float, convention: str) -> tf.Tensor:
    """``wd * sum(w^2) / 2`` (tf.nn.l2_loss, seed 000) or ``wd * sum(w^2)`` (Keras' l2
    regularizer, seed 002)."""
    half = tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in kernels])
    return weight_decay * (2.0 * half if convention == "keras" else half)


def hits(scores: tf.Tensor, labels: tf.Tensor, k: int) -> tf.Tensor:
    """[top-1 hits, top-k hits, examples] of one batch (scores: logits or probabilities)."""
    scores = tf.cast(scores, tf.float32)
    labels = tf.cast(labels, tf.int32)
    top1 = tf.reduce_sum(
        tf.cast(tf.equal(tf.argmax(scores, -1, output_type=tf.int32), labels), tf.float32)
    )
    topk = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, scores, k), tf.float32))
    return tf.stack([top1, topk, tf.cast(tf.shape(labels)[0], tf.float32)])
