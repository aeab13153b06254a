"""The densenet-train command line a job's spec implies. Only fields the user set become
flags: an unset field keeps the trainer's own default (one source of truth for each default).
The program and flag names are densenet_contract.trainer_cli's, which the trainer declares;
tests/contract parses this output with the trainer's own parser."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from densenet_contract import trainer_cli as flags

from ..job import Job

TRAIN = flags.TRAIN
LAUNCH = flags.LAUNCH

# spec.training field -> densenet-train flag, for fields that map one to one.
TRAINING_FLAGS: dict[str, str] = {
    "batchSize": flags.BATCH_SIZE,
    "optimizer": flags.OPTIMIZER,
    "lr": flags.LR,
    "lrSchedule": flags.LR_SCHED,
    "finalLr": flags.FINAL_LR,
    "warmupEpochs": flags.WARMUP_EPOCHS,
    "epochs": flags.MAX_EPOCHS,
    "maxSteps": flags.MAX_TRAIN_STEPS,
    "weightDecay": flags.WEIGHT_DECAY,
    "momentum": flags.MOMENTUM,
    "labelSmoothing": flags.LABEL_SMOOTHING,
    "dropoutRate": flags.DROPOUT_RATE,
    "xla": flags.XLA,
    "iterationsPerLoop": flags.ITERATIONS_PER_LOOP,
    "displayEvery": flags.DISPLAY_EVERY,
    "epochsBetweenEvals": flags.EPOCHS_BETWEEN_EVALS,
    "hflip": flags.HFLIP,
}
PRECISION_FLAGS = {
    "fp32": [flags.BFLOAT16, flags.FALSE],
    "bf16": [flags.BFLOAT16],
    "fp16": [flags.FP16],
}


def _text(value: Any) -> str:
    """Flag text: floats in plain decimals (0.00001, not 1e-05), as users type them."""
    if isinstance(value, bool):
        return flags.TRUE if value else flags.FALSE
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else f"{text}.0"
    return str(value)


def trainer_args(job: Job, device: str) -> list[str]:
    """densenet-train's flags (without the program name) for densenet-train --device
    ``device``: explicit, so a pod never falls back to the CPU silently."""
    spec = job.spec
    dataset = spec["dataset"]
    args: list[str] = [flags.DEVICE, device, flags.MODE, spec["mode"]]
    if dataset["format"] == "synthetic":
        args.append(flags.SYNTHETIC)
    else:
        args += [flags.DATA_DIR, dataset["path"]]
    if "numClasses" in dataset:
        args += [flags.NUM_CLASSES, _text(dataset["numClasses"])]
    if "imageSize" in dataset:
        args += [flags.IMAGE_SIZE, _text(dataset["imageSize"])]

    training = spec.get("training", {})
    for field, flag in TRAINING_FLAGS.items():
        if field in training:
            args += [flag, _text(training[field])]
    if "precision" in training:
        args += PRECISION_FLAGS[training["precision"]]
    if "cropScale" in training:
        args += [flags.CROP_SCALE, *(_text(v) for v in training["cropScale"])]

    checkpoint = spec["checkpoint"]
    args += [flags.LOG_DIR, job.log_dir]
    if "everySteps" in checkpoint:
        args += [flags.SAVE_CHECKPOINTS_STEPS, _text(checkpoint["everySteps"])]
    if "keep" in checkpoint:
        args += [flags.KEEP_CHECKPOINTS, _text(checkpoint["keep"])]

    if spec["mode"] == "evaluate":
        args += [flags.CHECKPOINT_DIR, spec["evaluate"]["checkpoint"] or spec["pretrained"]]
    elif spec["pretrained"]:
        args += [flags.PRETRAINED, spec["pretrained"]]

    args += [flags.METRICS_PORT, str(job.metrics_port or 0)]
    return args + list(training.get("extraArgs", []))


def command(job: Job, device: str, processes_per_pod: int, launcher: bool) -> list[str]:
    """The container command: densenet-train, or the per-device launcher around it."""
    train = [TRAIN, *trainer_args(job, device)]
    if not launcher:
        return train
    return [LAUNCH, flags.LAUNCH_NPROC, str(processes_per_pod), flags.LAUNCH_END, *train]
