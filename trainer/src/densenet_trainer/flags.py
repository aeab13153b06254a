"""Command-line flags: both seed recipes' flags with their names, resolved into a config.

Parsing never touches TensorFlow. Every problem (unknown flag, bad value, conflicting pair)
raises :class:`UserError`, which the CLI prints as one line and turns into exit code 2.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Sequence
from typing import Any, NoReturn

from . import config as cfg
from .errors import UserError

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
# Names other trainers use for our flags: an unknown flag among them gets ours suggested.
_OTHER_NAMES = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "num_epochs": "max_epochs",
    "train_epochs": "max_epochs",
    "train_steps": "max_train_steps",
    "steps": "max_train_steps",
    "max_steps": "max_train_steps",
    "model_dir": "log_dir",
    "output_dir": "log_dir",
    "data": "data_dir",
    "data_path": "data_dir",
    "wd": "weight_decay",
    "lr_schedule": "lr_sched",
    "train_batch_size": "batch_size",
    "bf16": "bfloat16",
    "use_bf16": "bfloat16",
    "warmup": "warmup_epochs",
    "aspect": "crop_scale",
    "scale": "crop_scale",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        ns, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.error(self._unknown(unknown))
        return ns

    def _unknown(self, unknown: list[str]) -> str:
        flags = [arg.split("=", 1)[0] for arg in unknown if arg.startswith("-")]
        if not flags:
            return f"unexpected argument {unknown[0]!r}: every value follows its --flag"
        name = flags[0]
        known = [s for s in self._option_string_actions if s.startswith("--")]
        guess = _OTHER_NAMES.get(name.lstrip("-"))
        near = [f"--{guess}"] if guess else difflib.get_close_matches(name, known, 1, 0.75)
        hint = f"; did you mean {near[0]}?" if near else ""
        return f"unrecognized argument {name}{hint}"


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _fraction(text: str) -> float:
    value = _float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _probability(text: str) -> float:
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {value}")
    return value


def _area_fraction(text: str) -> float:
    value = _float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be an area fraction in (0, 1], got {value}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0..65535, got {value}")
    return value


def _d(dotted: str) -> str:
    """Help suffix naming the default (and seed 002's, where it differs)."""
    base = cfg.default_of(dotted)
    if dotted in cfg.SEED002_DEFAULTS:
        return f" (default: {base}; {cfg.SEED002_DEFAULTS[dotted]} with --dataset_dir/--only_eval)"
    return f" (default: {base})"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="densenet-train",
        allow_abbrev=False,
        description=(
            "Train or evaluate DenseNet-121 with TensorFlow on CPU, NVIDIA GPU, Ascend NPU or "
            "Habana Gaudi. Accepts the flags of both seed recipes (Ascend ModelZoo train.py "
            "and Habana's Keras train.py). Exit codes: 0 ok, 1 crash, 2 bad flags, 3 bad data, "
            "4 loss diverged (NaN/inf), 5 device or vendor package missing, 75 preempted "
            "(checkpoint written, restart to resume)."
        ),
    )
    flag = {"nargs": "?", "const": True, "type": _bool, "metavar": "BOOL"}

    g = p.add_argument_group("data")
    g.add_argument(
        "--data_dir",
        help="dataset root: TFRecords (train-*, validation-*) or "
        "folders (train/ and val/, one sub-folder per class)",
    )
    g.add_argument(
        "--dataset_dir", help="seed 002's name for --data_dir; also selects seed 002's defaults"
    )
    g.add_argument("--synthetic", **flag, help="train on random images instead of a dataset")
    g.add_argument(
        "--num_classes", type=_positive_int, help="number of classes" + _d("data.num_classes")
    )
    g.add_argument(
        "--image_size",
        type=_positive_int,
        help="square input size in pixels" + _d("data.image_size"),
    )
    g.add_argument(
        "--batch_size",
        type=_positive_int,
        help="mini-batch size per device "
        "(the global batch is this times the number of devices)" + _d("data.batch_size"),
    )
    g.add_argument("--seed", type=_int, help="base seed of the data order" + _d("data.seed"))
    g.add_argument(
        "--crop_scale",
        nargs=2,
        type=_area_fraction,
        metavar=("MIN", "MAX"),
        help="training augmentation: the random-resized crop covers this fraction of the "
        "image's area; 1 1 keeps the whole image" + _d("data.crop_scale"),
    )
    g.add_argument(
        "--hflip",
        type=_probability,
        help="training augmentation: probability of a horizontal flip; 0 for digits or text"
        + _d("data.hflip"),
    )

    g = p.add_argument_group("model")
    g.add_argument(
        "--dropout_rate",
        type=_fraction,
        help="dropout before the classifier" + _d("model.dropout_rate"),
    )
    g.add_argument(
        "--version",
        choices=cfg.INITIALIZERS,
        help="weight initialisation: keras "
        "(glorot uniform, Keras' default) or he_normal / he_uniform (as in the paper)"
        + _d("model.initializer"),
    )
    g.add_argument(
        "--bn_momentum",
        type=_fraction,
        help="momentum of the batch-norm moving statistics used at evaluation; lower it for "
        "short runs" + _d("model.bn_momentum"),
    )
    g.add_argument(
        "--pretrained",
        help="warm start: a checkpoint (directory or prefix) written "
        "by this trainer, or a Keras weights file (.h5, .weights.h5); ignored when "
        "--log_dir already holds a checkpoint to resume from",
    )

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=cfg.OPTIMIZERS, help="optimizer" + _d("optim.optimizer"))
    g.add_argument("--lr", type=_non_negative_float, help="peak learning rate" + _d("optim.lr"))
    g.add_argument("--initial_lr", type=_non_negative_float, help="seed 002's name for --lr")
    g.add_argument(
        "--final_lr",
        type=_non_negative_float,
        help="learning rate at the end of the schedule" + _d("optim.final_lr"),
    )
    g.add_argument(
        "--lr_sched",
        choices=cfg.LR_SCHEDULES,
        help="schedule after warmup, one value per epoch e of E as seed 002's script: steps "
        "(lr * 0.1 ** (e // 30); final_lr unused), exp (geometric from lr to final_lr), linear "
        "(lr to final_lr); per step: cosine (lr to final_lr), constant" + _d("optim.lr_sched"),
    )
    g.add_argument(
        "--warmup_epochs",
        type=_non_negative_float,
        help="linear warmup from 0 to --lr over this many epochs" + _d("optim.warmup_epochs"),
    )
    g.add_argument(
        "--weight_decay",
        type=_non_negative_float,
        help="L2 on conv/dense kernels, added to the loss and logged as reg_loss; "
        "see --weight_decay_convention for its scale" + _d("optim.weight_decay"),
    )
    g.add_argument(
        "--weight_decay_convention",
        choices=cfg.WEIGHT_DECAY_CONVENTIONS,
        help="l2_loss: wd * sum(w^2) / 2 (tf.nn.l2_loss, seed 000); keras: wd * sum(w^2) "
        "(keras.regularizers.l2, seed 002), twice as strong" + _d("optim.weight_decay_convention"),
    )
    g.add_argument(
        "--momentum",
        type=_non_negative_float,
        help="momentum of sgd and rmsprop" + _d("optim.momentum"),
    )
    g.add_argument("--nesterov", **flag, help="Nesterov momentum (sgd only)")
    g.add_argument(
        "--label_smoothing",
        type=_fraction,
        help="label smoothing of the cross-entropy" + _d("optim.label_smoothing"),
    )
    g.add_argument("--bfloat16", **flag, help="mixed precision bfloat16" + _d("run.precision"))
    g.add_argument("--fp16", **flag, help="mixed precision float16 with dynamic loss scaling")
    g.add_argument("--xla", **flag, help="compile the training step with XLA")

    g = p.add_argument_group("run")
    g.add_argument(
        "--mode",
        choices=cfg.MODES,
        help="train; evaluate (a checkpoint or "
        "SavedModel); train_and_evaluate (every --epochs_between_evals); benchmark "
        "(synthetic data, prints images/sec)" + _d("run.mode"),
    )
    g.add_argument(
        "--max_epochs", type=_positive_float, help="epochs to train" + _d("run.max_epochs")
    )
    g.add_argument("--epochs", type=_positive_float, help="seed 002's name for --max_epochs")
    g.add_argument(
        "--max_train_steps",
        type=_positive_int,
        help="stop at this global step; overrides --max_epochs (benchmark mode: "
        f"{cfg.BENCHMARK_STEPS})",
    )
    g.add_argument(
        "--iterations_per_loop",
        type=_positive_int,
        help="training steps per host "
        "call; a SIGTERM is handled after the step in progress" + _d("run.iterations_per_loop"),
    )
    g.add_argument(
        "--display_every",
        type=_positive_int,
        help="print the log line every N steps" + _d("run.display_every"),
    )
    g.add_argument(
        "--save_summary_steps",
        type=_positive_int,
        help="write TensorBoard scalars every N steps" + _d("run.save_summary_steps"),
    )
    g.add_argument(
        "--save_checkpoints_steps",
        type=_positive_int,
        help="checkpoint every N steps (and at every epoch end)" + _d("run.save_checkpoints_steps"),
    )
    g.add_argument(
        "--keep_checkpoints",
        type=_positive_int,
        help="checkpoints kept in --log_dir" + _d("run.keep_checkpoints"),
    )
    g.add_argument("--do_checkpoint", **flag, help="write checkpoints" + _d("run.do_checkpoint"))
    g.add_argument(
        "--epochs_between_evals",
        type=_positive_float,
        help="evaluate every N epochs in train_and_evaluate" + _d("run.epochs_between_evals"),
    )
    g.add_argument(
        "--log_dir",
        help="checkpoints, log file, TensorBoard summaries and the "
        "exported SavedModel; a restart resumes from here" + _d("run.log_dir"),
    )
    g.add_argument("--log_name", help="log file name inside --log_dir" + _d("run.log_name"))
    g.add_argument("--checkpoint_dir", help="evaluate: checkpoint directory or prefix to load")
    g.add_argument("--eval_dir", help="evaluate: checkpoint directory to load (seed 000)")
    g.add_argument(
        "--only_eval",
        help="evaluate a SavedModel, checkpoint or Keras weights file "
        "(seed 002); implies --mode evaluate and seed 002's defaults",
    )
    g.add_argument(
        "--export",
        **flag,
        help="export the final model as a SavedModel to --log_dir/saved_model" + _d("run.export"),
    )

    g = p.add_argument_group("devices and distribution")
    g.add_argument(
        "--device",
        choices=cfg.DEVICES,
        help="auto picks npu, hpu or gpu when "
        "present, else cpu; an explicit device never falls back" + _d("run.device"),
    )
    g.add_argument(
        "--rank_size",
        type=_positive_int,
        help="devices in the whole job (Ascend RANK_SIZE); checked against what the trainer finds",
    )
    g.add_argument(
        "--group_size",
        type=_positive_int,
        help="worker processes in the job; checked against TF_CONFIG / RANK_SIZE",
    )
    g.add_argument(
        "--rank_table_timeout",
        type=_non_negative_float,
        help="seconds to wait for "
        "the Ascend rank table's status to become completed" + _d("run.rank_table_timeout"),
    )
    g.add_argument(
        "--metrics_port",
        type=_port,
        help="Prometheus endpoint port, 0 turns it off" + _d("run.metrics_port"),
    )
    g.add_argument(
        "--metrics_address", help="address the metrics endpoint binds" + _d("run.metrics_address")
    )
    return p


def _conflict(a: str, b: str, why: str) -> UserError:
    return UserError(f"--{a} and --{b} conflict: {why}")


def _one_of(ns: argparse.Namespace, a: str, b: str, why: str) -> Any:
    va, vb = getattr(ns, a), getattr(ns, b)
    if va is not None and vb is not None:
        raise _conflict(a, b, why)
    return va if va is not None else vb


def parse(argv: Sequence[str] | None = None) -> cfg.TrainerConfig:
    """Parse a command line into a resolved :class:`TrainerConfig`."""
    ns = build_parser().parse_args(argv)
    return resolve(ns)


def resolve(ns: argparse.Namespace) -> cfg.TrainerConfig:
    seed002 = ns.dataset_dir is not None or ns.only_eval is not None

    def pick(value: Any, dotted: str) -> Any:
        return cfg.default_of(dotted, seed002) if value is None else value

    data_dir = _one_of(ns, "data_dir", "dataset_dir", "they name the same thing; give one")
    lr = _one_of(ns, "lr", "initial_lr", "they name the same thing; give one")
    epochs = _one_of(ns, "max_epochs", "epochs", "they name the same thing; give one")

    if ns.bfloat16 and ns.fp16:
        raise _conflict("bfloat16", "fp16", "pick one mixed-precision type")
    if ns.fp16:
        precision = "fp16"
    elif ns.bfloat16 is None:
        precision = cfg.default_of("run.precision", seed002)
    else:
        precision = "bf16" if ns.bfloat16 else "fp32"

    sources = [n for n in ("only_eval", "eval_dir", "checkpoint_dir") if getattr(ns, n)]
    if len(sources) > 1:
        raise _conflict(sources[0], sources[1], "give one model to evaluate")
    eval_from = getattr(ns, sources[0]) if sources else None
    mode = ns.mode
    if eval_from is not None:
        if mode not in (None, "evaluate"):
            raise _conflict(sources[0], "mode", f"--{sources[0]} evaluates; --mode is {mode}")
        mode = "evaluate"
    mode = mode or cfg.default_of("run.mode")

    synthetic = bool(ns.synthetic) or mode == "benchmark"
    if synthetic and data_dir is not None:
        name = "data_dir" if ns.data_dir is not None else "dataset_dir"
        other = "synthetic" if ns.synthetic else "mode"
        raise _conflict(name, other, "synthetic data reads no dataset; drop one")
    if not synthetic and data_dir is None:
        raise UserError("no data: give --data_dir DIR (or --dataset_dir DIR), or --synthetic")

    optimizer = pick(ns.optimizer, "optim.optimizer")
    if ns.nesterov and optimizer != "sgd":
        raise _conflict("nesterov", "optimizer", f"Nesterov momentum needs sgd, not {optimizer}")

    if ns.metrics_address is not None and ns.metrics_port == 0:
        raise _conflict("metrics_address", "metrics_port", "port 0 turns the endpoint off")

    crop_scale = tuple(pick(ns.crop_scale, "data.crop_scale"))
    if crop_scale[0] > crop_scale[1]:
        low, high = crop_scale
        raise UserError(f"--crop_scale {low:g} {high:g}: MIN must not exceed MAX")

    image_size = pick(ns.image_size, "data.image_size")
    if image_size < 32:
        raise UserError(f"--image_size {image_size} is too small: DenseNet-121 needs >= 32")

    return cfg.TrainerConfig(
        data=cfg.DataConfig(
            data_dir=data_dir,
            synthetic=synthetic,
            image_size=image_size,
            num_classes=pick(ns.num_classes, "data.num_classes"),
            batch_size=pick(ns.batch_size, "data.batch_size"),
            seed=pick(ns.seed, "data.seed"),
            crop_scale=crop_scale,
            hflip=pick(ns.hflip, "data.hflip"),
        ),
        model=cfg.ModelConfig(
            dropout_rate=pick(ns.dropout_rate, "model.dropout_rate"),
            initializer=pick(ns.version, "model.initializer"),
            bn_momentum=pick(ns.bn_momentum, "model.bn_momentum"),
        ),
        optim=cfg.OptimConfig(
            optimizer=optimizer,
            lr=pick(lr, "optim.lr"),
            final_lr=pick(ns.final_lr, "optim.final_lr"),
            lr_sched=pick(ns.lr_sched, "optim.lr_sched"),
            warmup_epochs=pick(ns.warmup_epochs, "optim.warmup_epochs"),
            weight_decay=pick(ns.weight_decay, "optim.weight_decay"),
            weight_decay_convention=pick(
                ns.weight_decay_convention, "optim.weight_decay_convention"
            ),
            momentum=pick(ns.momentum, "optim.momentum"),
            nesterov=bool(ns.nesterov),
            label_smoothing=pick(ns.label_smoothing, "optim.label_smoothing"),
        ),
        run=cfg.RunConfig(
            mode=mode,
            device=pick(ns.device, "run.device"),
            precision=precision,
            max_epochs=pick(epochs, "run.max_epochs"),
            max_train_steps=ns.max_train_steps
            or (cfg.BENCHMARK_STEPS if mode == "benchmark" else None),
            iterations_per_loop=pick(ns.iterations_per_loop, "run.iterations_per_loop"),
            display_every=pick(ns.display_every, "run.display_every"),
            save_summary_steps=pick(ns.save_summary_steps, "run.save_summary_steps"),
            save_checkpoints_steps=pick(ns.save_checkpoints_steps, "run.save_checkpoints_steps"),
            keep_checkpoints=pick(ns.keep_checkpoints, "run.keep_checkpoints"),
            do_checkpoint=pick(ns.do_checkpoint, "run.do_checkpoint"),
            epochs_between_evals=pick(ns.epochs_between_evals, "run.epochs_between_evals"),
            log_dir=pick(ns.log_dir, "run.log_dir"),
            log_name=pick(ns.log_name, "run.log_name"),
            eval_from=eval_from,
            eval_flag=sources[0] if sources else None,
            pretrained=ns.pretrained,
            metrics_port=pick(ns.metrics_port, "run.metrics_port"),
            metrics_address=pick(ns.metrics_address, "run.metrics_address"),
            rank_size=ns.rank_size,
            group_size=ns.group_size,
            rank_table_timeout=pick(ns.rank_table_timeout, "run.rank_table_timeout"),
            export=pick(ns.export, "run.export"),
            xla=bool(ns.xla),
        ),
    )
