"""Command-line flags: both seed recipes' flags with their names, resolved into a config.

Each flag is declared once, in :data:`FLAGS`: its name, the config field it sets (whose
default, in config.py, its help states), how its text is read, and its help. The flags the
operator passes take their names from densenet_contract.trainer_cli. Parsing never touches
TensorFlow. Every problem (unknown flag, bad value, conflicting pair) raises
:class:`UserError`, which the CLI prints as one line and turns into exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from densenet_contract import trainer_cli as shared
from densenet_contract.exitcodes import MEANINGS

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


def _dense_blocks(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected four comma-separated counts, got {text!r}")
    a, b, c, d = (_positive_int(part.strip()) for part in parts)
    return a, b, c, d


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0..65535, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag. ``field`` is the config field (``section.name``) it sets; the first flag of a
    field states that field's default in its help (seed 002's too, where it differs)."""

    name: str
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    nargs: int | None = None
    metavar: str | tuple[str, ...] | None = None
    boolean: bool = False  # --flag, --flag true|false, --flag=False
    same_as: str | None = None  # another name of that flag (seed 002's): giving both is an error
    seed002: bool = False  # giving it selects seed 002's defaults (config.SEED002_DEFAULTS)

    @property
    def dest(self) -> str:
        return self.name[2:]


# Fields that several flags set, each in its own way: resolve() combines them.
_COMBINED = ("run.precision", "run.eval_from")

FLAGS: dict[str, tuple[Flag, ...]] = {
    "data": (
        Flag(
            shared.DATA_DIR,
            "data.data_dir",
            "dataset root: TFRecords (train-*, validation-*) or "
            "folders (train/ and val/, one sub-folder per class)",
        ),
        Flag(
            "--dataset_dir",
            "data.data_dir",
            "seed 002's name for --data_dir; also selects seed 002's defaults",
            same_as=shared.DATA_DIR,
            seed002=True,
        ),
        Flag(
            shared.SYNTHETIC,
            "data.synthetic",
            "train on random images instead of a dataset",
            boolean=True,
        ),
        Flag(shared.NUM_CLASSES, "data.num_classes", "number of classes", _positive_int),
        Flag(shared.IMAGE_SIZE, "data.image_size", "square input size in pixels", _positive_int),
        Flag(
            shared.BATCH_SIZE,
            "data.batch_size",
            "mini-batch size per device (the global batch is this times the number of devices)",
            _positive_int,
        ),
        Flag("--seed", "data.seed", "base seed of the data order", _int),
        Flag(
            shared.CROP_SCALE,
            "data.crop_scale",
            "training augmentation: the random-resized crop covers this fraction of the "
            "image's area; 1 1 keeps the whole image",
            _area_fraction,
            nargs=2,
            metavar=("MIN", "MAX"),
        ),
        Flag(
            shared.HFLIP,
            "data.hflip",
            "training augmentation: probability of a horizontal flip; 0 for digits or text",
            _probability,
        ),
    ),
    "model": (
        Flag(
            "--dense_blocks",
            "model.dense_blocks",
            "layers in each of the four dense blocks: DenseNet-121 is 6,12,24,16 (169: "
            "6,12,32,32; 201: 6,12,48,32); the tests' 1,1,1,1 traces in seconds",
            _dense_blocks,
            metavar="N,N,N,N",
        ),
        Flag(shared.DROPOUT_RATE, "model.dropout_rate", "dropout before the classifier", _fraction),
        Flag(
            "--version",
            "model.initializer",
            "weight initialisation: keras "
            "(glorot uniform, Keras' default) or he_normal / he_uniform (as in the paper)",
            choices=cfg.INITIALIZERS,
        ),
        Flag(
            "--bn_momentum",
            "model.bn_momentum",
            "momentum of the batch-norm moving statistics used at evaluation; lower it for "
            "short runs",
            _fraction,
        ),
        Flag(
            shared.PRETRAINED,
            "run.pretrained",
            "warm start: a checkpoint (directory or prefix) written "
            "by this trainer, or a Keras weights file (.h5, .weights.h5); ignored when "
            "--log_dir already holds a checkpoint to resume from",
        ),
    ),
    "optimisation": (
        Flag(shared.OPTIMIZER, "optim.optimizer", "optimizer", choices=cfg.OPTIMIZERS),
        Flag(shared.LR, "optim.lr", "peak learning rate", _non_negative_float),
        Flag(
            "--initial_lr",
            "optim.lr",
            "seed 002's name for --lr",
            _non_negative_float,
            same_as=shared.LR,
        ),
        Flag(
            shared.FINAL_LR,
            "optim.final_lr",
            "learning rate at the end of the schedule",
            _non_negative_float,
        ),
        Flag(
            shared.LR_SCHED,
            "optim.lr_sched",
            "schedule after warmup, one value per epoch e of E as seed 002's script: steps "
            "(lr * 0.1 ** (e // 30); final_lr unused), exp (geometric from lr to final_lr), "
            "linear (lr to final_lr); per step: cosine (lr to final_lr), constant",
            choices=cfg.LR_SCHEDULES,
        ),
        Flag(
            shared.WARMUP_EPOCHS,
            "optim.warmup_epochs",
            "linear warmup from 0 to --lr over this many epochs",
            _non_negative_float,
        ),
        Flag(
            shared.WEIGHT_DECAY,
            "optim.weight_decay",
            "L2 on conv/dense kernels, added to the loss and logged as reg_loss; "
            "see --weight_decay_convention for its scale",
            _non_negative_float,
        ),
        Flag(
            "--weight_decay_convention",
            "optim.weight_decay_convention",
            "l2_loss: wd * sum(w^2) / 2 (tf.nn.l2_loss, seed 000); keras: wd * sum(w^2) "
            "(keras.regularizers.l2, seed 002), twice as strong",
            choices=cfg.WEIGHT_DECAY_CONVENTIONS,
        ),
        Flag(shared.MOMENTUM, "optim.momentum", "momentum of sgd and rmsprop", _non_negative_float),
        Flag("--nesterov", "optim.nesterov", "Nesterov momentum (sgd only)", boolean=True),
        Flag(
            shared.LABEL_SMOOTHING,
            "optim.label_smoothing",
            "label smoothing of the cross-entropy",
            _fraction,
        ),
        Flag(shared.BFLOAT16, "run.precision", "mixed precision bfloat16", boolean=True),
        Flag(
            shared.FP16,
            "run.precision",
            "mixed precision float16 with dynamic loss scaling",
            boolean=True,
        ),
        Flag(shared.XLA, "run.xla", "compile the training step with XLA", boolean=True),
    ),
    "run": (
        Flag(
            shared.MODE,
            "run.mode",
            "train; evaluate (a checkpoint or "
            "SavedModel); train_and_evaluate (every --epochs_between_evals); benchmark "
            "(synthetic data, prints images/sec)",
            choices=cfg.MODES,
        ),
        Flag(shared.MAX_EPOCHS, "run.max_epochs", "epochs to train", _positive_float),
        Flag(
            "--epochs",
            "run.max_epochs",
            "seed 002's name for --max_epochs",
            _positive_float,
            same_as=shared.MAX_EPOCHS,
        ),
        Flag(
            shared.MAX_TRAIN_STEPS,
            "run.max_train_steps",
            "stop at this global step; overrides --max_epochs (benchmark mode: "
            f"{cfg.BENCHMARK_STEPS})",
            _positive_int,
        ),
        Flag(
            shared.ITERATIONS_PER_LOOP,
            "run.iterations_per_loop",
            "training steps per host call; a SIGTERM is handled after the step in progress",
            _positive_int,
        ),
        Flag(
            shared.DISPLAY_EVERY,
            "run.display_every",
            "print the log line every N steps",
            _positive_int,
        ),
        Flag(
            "--save_summary_steps",
            "run.save_summary_steps",
            "write TensorBoard scalars every N steps",
            _positive_int,
        ),
        Flag(
            shared.SAVE_CHECKPOINTS_STEPS,
            "run.save_checkpoints_steps",
            "checkpoint every N steps (and at every epoch end)",
            _positive_int,
        ),
        Flag(
            shared.KEEP_CHECKPOINTS,
            "run.keep_checkpoints",
            "checkpoints kept in --log_dir",
            _positive_int,
        ),
        Flag("--do_checkpoint", "run.do_checkpoint", "write checkpoints", boolean=True),
        Flag(
            shared.EPOCHS_BETWEEN_EVALS,
            "run.epochs_between_evals",
            "evaluate every N epochs in train_and_evaluate",
            _positive_float,
        ),
        Flag(
            shared.LOG_DIR,
            "run.log_dir",
            "checkpoints, log file, TensorBoard summaries and the "
            "exported SavedModel; a restart resumes from here",
        ),
        Flag("--log_name", "run.log_name", "log file name inside --log_dir"),
        Flag(
            shared.CHECKPOINT_DIR,
            "run.eval_from",
            "evaluate: checkpoint directory or prefix to load",
        ),
        Flag("--eval_dir", "run.eval_from", "evaluate: checkpoint directory to load (seed 000)"),
        Flag(
            "--only_eval",
            "run.eval_from",
            "evaluate a SavedModel, checkpoint or Keras weights file "
            "(seed 002); implies --mode evaluate and seed 002's defaults",
            seed002=True,
        ),
        Flag(
            "--export",
            "run.export",
            "export the final model as a SavedModel to --log_dir/saved_model",
            boolean=True,
        ),
    ),
    "devices and distribution": (
        Flag(
            shared.DEVICE,
            "run.device",
            "auto picks npu, hpu or gpu when "
            "present, else cpu; an explicit device never falls back",
            choices=cfg.DEVICES,
        ),
        Flag(
            "--rank_size",
            "run.rank_size",
            "devices in the whole job (Ascend RANK_SIZE); checked against what the trainer finds",
            _positive_int,
        ),
        Flag(
            "--group_size",
            "run.group_size",
            "worker processes in the job; checked against TF_CONFIG / RANK_SIZE",
            _positive_int,
        ),
        Flag(
            "--rank_table_timeout",
            "run.rank_table_timeout",
            "seconds to wait for the Ascend rank table's status to become completed",
            _non_negative_float,
        ),
        Flag(
            shared.METRICS_PORT,
            "run.metrics_port",
            "Prometheus endpoint port, 0 turns it off",
            _port,
        ),
        Flag("--metrics_address", "run.metrics_address", "address the metrics endpoint binds"),
    ),
}
ALL_FLAGS: tuple[Flag, ...] = tuple(flag for group in FLAGS.values() for flag in group)
_SEED002_FLAGS = tuple(flag for flag in ALL_FLAGS if flag.seed002)


def _help(flag: Flag, first: bool) -> str:
    """The flag's help, naming its field's default (and seed 002's, where it differs) on the
    first flag of the field, unless there is none to name (None, False)."""
    base = cfg.default_of(flag.field)
    if not first or base is None or base is False:
        return flag.help
    if flag.field in cfg.SEED002_DEFAULTS:
        names = "/".join(f.name for f in _SEED002_FLAGS)
        seed002 = cfg.SEED002_DEFAULTS[flag.field]
        return f"{flag.help} (default: {base}; {seed002} with {names})"
    return f"{flag.help} (default: {base})"


def _exit_codes() -> str:
    return ", ".join(f"{int(code)} {meaning}" for code, meaning in MEANINGS.items())


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=shared.TRAIN,
        allow_abbrev=False,
        description=(
            "Train or evaluate DenseNet-121 with TensorFlow on CPU, NVIDIA GPU, Ascend NPU or "
            "Habana Gaudi. Accepts the flags of both seed recipes (Ascend ModelZoo train.py "
            f"and Habana's Keras train.py). Exit codes: {_exit_codes()}."
        ),
    )
    fields_seen: set[str] = set()
    for title, flags in FLAGS.items():
        group = p.add_argument_group(title)
        for flag in flags:
            options: dict[str, Any] = {"dest": flag.dest}
            if flag.boolean:
                options.update(nargs="?", const=True, type=_bool, metavar="BOOL")
            for key in ("type", "choices", "nargs", "metavar"):
                if getattr(flag, key) is not None:
                    options[key] = getattr(flag, key)
            group.add_argument(
                flag.name, help=_help(flag, flag.field not in fields_seen), **options
            )
            fields_seen.add(flag.field)
    return p


def _conflict(a: str, b: str, why: str) -> UserError:
    return UserError(f"--{a} and --{b} conflict: {why}")


def parse(argv: Sequence[str] | None = None) -> cfg.TrainerConfig:
    """Parse a command line into a resolved :class:`TrainerConfig`."""
    ns = build_parser().parse_args(argv)
    return resolve(ns)


def _given(ns: argparse.Namespace) -> dict[str, Any]:
    """Config field -> the value the command line gave it (None: not given), for every field
    but the combined ones; a flag and its other name both given is an error."""
    given: dict[str, Any] = {}
    for flag in ALL_FLAGS:
        if flag.field in _COMBINED:
            continue
        value = getattr(ns, flag.dest)
        if flag.same_as is None:
            given[flag.field] = value
        elif value is not None:
            if given[flag.field] is not None:
                why = "they name the same thing; give one"
                raise _conflict(flag.same_as[2:], flag.dest, why)
            given[flag.field] = value
    return given


def _config(values: dict[str, Any]) -> cfg.TrainerConfig:
    """A TrainerConfig from ``section.name`` -> value."""
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        section, name = dotted.split(".")
        sections.setdefault(section, {})[name] = value
    defaults = cfg.TrainerConfig()
    return cfg.TrainerConfig(
        **{name: type(getattr(defaults, name))(**kw) for name, kw in sections.items()}
    )


def resolve(ns: argparse.Namespace) -> cfg.TrainerConfig:
    seed002 = any(getattr(ns, flag.dest) is not None for flag in _SEED002_FLAGS)
    given = _given(ns)

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

    data_dir = given["data.data_dir"]
    synthetic = bool(ns.synthetic) or mode == "benchmark"
    if synthetic and data_dir is not None:
        name = "data_dir" if ns.data_dir is not None else "dataset_dir"
        other = "synthetic" if ns.synthetic else "mode"
        raise _conflict(name, other, "synthetic data reads no dataset; drop one")
    if not synthetic and data_dir is None:
        raise UserError("no data: give --data_dir DIR (or --dataset_dir DIR), or --synthetic")

    values = {
        field: cfg.default_of(field, seed002) if value is None else value
        for field, value in given.items()
    }
    if ns.nesterov and values["optim.optimizer"] != "sgd":
        optimizer = values["optim.optimizer"]
        raise _conflict("nesterov", "optimizer", f"Nesterov momentum needs sgd, not {optimizer}")

    if ns.metrics_address is not None and ns.metrics_port == 0:
        raise _conflict("metrics_address", "metrics_port", "port 0 turns the endpoint off")

    crop_scale = tuple(values["data.crop_scale"])
    if crop_scale[0] > crop_scale[1]:
        low, high = crop_scale
        raise UserError(f"--crop_scale {low:g} {high:g}: MIN must not exceed MAX")

    image_size = values["data.image_size"]
    if image_size < 32:
        raise UserError(f"--image_size {image_size} is too small: DenseNet-121 needs >= 32")

    if values["run.max_train_steps"] is None and mode == "benchmark":
        values["run.max_train_steps"] = cfg.BENCHMARK_STEPS
    values.update(
        {
            "data.synthetic": synthetic,
            "data.crop_scale": crop_scale,
            "run.mode": mode,
            "run.precision": precision,
            "run.eval_from": eval_from,
            "run.eval_flag": sources[0] if sources else None,
        }
    )
    return _config(values)
