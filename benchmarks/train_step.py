"""Benchmark (a): our training step against Keras ``Model.fit``, same model, batch and data.

Both run DenseNet-121 under the same tf.distribute strategy on the same in-memory synthetic
batch (no input pipeline cost), SGD with momentum, softmax cross-entropy, and the same number
of steps per host call (ours: ``--iterations_per_loop``; Keras: ``steps_per_execution``). Ours
also computes the L2 reg_loss and the stop/finite checks it always does. Each side warms up
(tracing), then ``--repeats`` timed runs of ``--steps`` steps; prints the medians in images/s
and ours / fit (target: >= 1.0).

    .venv/bin/python benchmarks/train_step.py [--image_size 64] [--batch_size 16] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import tensorflow as tf

from densenet_trainer import compat, devices
from densenet_trainer.config import DataConfig, OptimConfig, RunConfig, TrainerConfig
from densenet_trainer.model import build_model
from densenet_trainer.schedules import make_schedule
from densenet_trainer.task import ClassificationTask


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=16, help="per replica")
    p.add_argument("--num_classes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iterations_per_loop", type=int, default=10)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--xla", action="store_true", help="jit_compile both sides")
    return p.parse_args()


def synthetic(args: argparse.Namespace, global_batch: int) -> tf.data.Dataset:
    images = tf.random.uniform([global_batch, args.image_size, args.image_size, 3])
    labels = tf.random.uniform([global_batch], maxval=args.num_classes, dtype=tf.int32)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def timed(run_steps, steps: int, repeats: int, images_per_step: int) -> list[float]:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_steps(steps)
        rates.append(steps * images_per_step / (time.perf_counter() - started))
    return rates


def main() -> None:
    args = parse()
    config = TrainerConfig(
        data=DataConfig(
            synthetic=True,
            image_size=args.image_size,
            num_classes=args.num_classes,
            batch_size=args.batch_size,
        ),
        optim=OptimConfig(
            lr=0.01, lr_sched="constant", warmup_epochs=0, weight_decay=0.0, label_smoothing=0.0
        ),
        run=RunConfig(
            device=args.device,
            precision=args.precision,
            xla=args.xla,
            iterations_per_loop=args.iterations_per_loop,
        ),
    )
    device = devices.create(config.run)
    compat.set_precision(args.precision)
    strategy = device.strategy
    global_batch = args.batch_size * strategy.num_replicas_in_sync
    data = synthetic(args, global_batch)
    ipl = args.iterations_per_loop

    task = ClassificationTask(config, device, make_schedule(config.optim, 1, 1))
    loop = task.make_train_loop()
    iterator = iter(strategy.experimental_distribute_dataset(data))

    def ours(steps: int) -> None:
        for _ in range(steps // ipl):
            loop(iterator, tf.constant(ipl, tf.int64))
        float(task.global_step.numpy())  # wait for the device

    with strategy.scope():
        model = build_model(config.model, args.num_classes, args.image_size)
        model.compile(
            optimizer=compat.keras.optimizers.SGD(0.01, momentum=0.9),
            loss=compat.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=ipl,
            jit_compile=args.xla,
        )

    def fit(steps: int) -> None:
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)

    ours(ipl)
    fit(ipl)  # tracing
    ours_rates, fit_rates = [], []
    for _ in range(args.repeats):  # interleaved, so machine load hits both alike
        ours_rates += timed(ours, args.steps, 1, global_batch)
        fit_rates += timed(fit, args.steps, 1, global_batch)
    ours_median, fit_median = statistics.median(ours_rates), statistics.median(fit_rates)
    print(
        f"device: {device.kind}  replicas: {strategy.num_replicas_in_sync}  "
        f"image_size: {args.image_size}  global batch: {global_batch}  "
        f"precision: {args.precision}  xla: {args.xla}  steps/host call: {ipl}  "
        f"TF {tf.__version__} Keras {compat.KERAS_MAJOR}"
    )
    print(
        f"ours (GradientTape + tf.function loop): median {ours_median:.1f} images/s  "
        f"runs: {', '.join(f'{r:.1f}' for r in ours_rates)}"
    )
    print(
        f"keras Model.fit:                        median {fit_median:.1f} images/s  "
        f"runs: {', '.join(f'{r:.1f}' for r in fit_rates)}"
    )
    print(f"ours / fit: {ours_median / fit_median:.3f} (target >= 1.0)")


if __name__ == "__main__":
    main()
