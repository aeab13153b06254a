"""The densenet-train command line a job's spec implies. Only fields the user set become
flags: an unset field keeps the trainer's own default (one source of truth for each default)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..job import Job

TRAIN = "densenet-train"
LAUNCH = "densenet-launch"

# spec.training field -> densenet-train flag, for fields that map one to one.
TRAINING_FLAGS: dict[str, str] = {
    "batchSize": "--batch_size",
    "optimizer": "--optimizer",
    "lr": "--lr",
    "lrSchedule": "--lr_sched",
    "finalLr": "--final_lr",
    "warmupEpochs": "--warmup_epochs",
    "epochs": "--max_epochs",
    "maxSteps": "--max_train_steps",
    "weightDecay": "--weight_decay",
    "momentum": "--momentum",
    "labelSmoothing": "--label_smoothing",
    "dropoutRate": "--dropout_rate",
    "xla": "--xla",
    "iterationsPerLoop": "--iterations_per_loop",
    "displayEvery": "--display_every",
    "epochsBetweenEvals": "--epochs_between_evals",
    "hflip": "--hflip",
}
PRECISION_FLAGS = {"fp32": ["--bfloat16", "false"], "bf16": ["--bfloat16"], "fp16": ["--fp16"]}


def _text(value: Any) -> str:
    """Flag text: floats in plain decimals (0.00001, not 1e-05), as users type them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else f"{text}.0"
    return str(value)


def trainer_args(job: Job, device: str) -> list[str]:
    """densenet-train's flags (without the program name) for densenet-train --device
    ``device``: explicit, so a pod never falls back to the CPU silently."""
    spec = job.spec
    dataset = spec["dataset"]
    args: list[str] = ["--device", device, "--mode", spec["mode"]]
    if dataset["format"] == "synthetic":
        args.append("--synthetic")
    else:
        args += ["--data_dir", dataset["path"]]
    if "numClasses" in dataset:
        args += ["--num_classes", _text(dataset["numClasses"])]
    if "imageSize" in dataset:
        args += ["--image_size", _text(dataset["imageSize"])]

    training = spec.get("training", {})
    for field, flag in TRAINING_FLAGS.items():
        if field in training:
            args += [flag, _text(training[field])]
    if "precision" in training:
        args += PRECISION_FLAGS[training["precision"]]
    if "cropScale" in training:
        args += ["--crop_scale", *(_text(v) for v in training["cropScale"])]

    checkpoint = spec["checkpoint"]
    args += ["--log_dir", checkpoint["path"]]
    if "everySteps" in checkpoint:
        args += ["--save_checkpoints_steps", _text(checkpoint["everySteps"])]
    if "keep" in checkpoint:
        args += ["--keep_checkpoints", _text(checkpoint["keep"])]

    if spec["mode"] == "evaluate":
        args += ["--checkpoint_dir", spec["evaluate"]["checkpoint"] or spec["pretrained"]]
    elif spec["pretrained"]:
        args += ["--pretrained", spec["pretrained"]]

    args += ["--metrics_port", str(job.metrics_port or 0)]
    return args + list(training.get("extraArgs", []))


def command(job: Job, device: str, processes_per_pod: int, launcher: bool) -> list[str]:
    """The container command: densenet-train, or the per-device launcher around it."""
    train = [TRAIN, *trainer_args(job, device)]
    if not launcher:
        return train
    return [LAUNCH, "--nproc", str(processes_per_pod), "--", *train]
