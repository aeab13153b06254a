"""Resolved training configuration: the one place where defaults live.

Plain dataclasses with no TensorFlow import, so the flag parser, the docs and the tests can use
them cheaply. Defaults follow seed 000 (the Ascend ModelZoo recipe). A command line written for
seed 002 (the Gaudi recipe: it names its data with ``--dataset_dir`` or evaluates with
``--only_eval``) gets seed 002's defaults instead, listed in :data:`SEED002_DEFAULTS`, so both
recipes' commands keep meaning what their users expect.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from densenet_contract import ports, trainer_cli

MODES = ("train", "evaluate", "train_and_evaluate", "benchmark")
DEVICES = (
    "auto",
    trainer_cli.DEVICE_CPU,
    trainer_cli.DEVICE_GPU,
    trainer_cli.DEVICE_NPU,
    trainer_cli.DEVICE_HPU,
)
OPTIMIZERS = ("sgd", "adam", "rmsprop")
LR_SCHEDULES = ("cosine", "steps", "exp", "linear", "constant")
# How --weight_decay turns into a loss: tf.nn.l2_loss (wd * sum(w^2) / 2, seed 000) or
# keras.regularizers.l2 (wd * sum(w^2), seed 002's Keras script).
WEIGHT_DECAY_CONVENTIONS = ("l2_loss", "keras")
PRECISIONS = ("fp32", "bf16", "fp16")
INITIALIZERS = ("keras", "he_normal", "he_uniform")

# 9410 (densenet_contract.ports, which the CRD's spec.metrics.port default must equal).
DEFAULT_METRICS_PORT = ports.TRAINER_METRICS
# --mode benchmark without --max_train_steps: enough host loops for a stable median.
BENCHMARK_STEPS = 100
# ImageNet-1k train split size: the epoch length when the data cannot be counted (synthetic).
IMAGENET_TRAIN_EXAMPLES = 1_281_167
IMAGENET_VALIDATION_EXAMPLES = 50_000
# Training augmentation (ImageNet's, as timm names them): random-resized-crop area range and
# horizontal-flip probability. Digits, text or scans want less (--crop_scale, --hflip).
DEFAULT_CROP_SCALE = (0.08, 1.0)
DEFAULT_HFLIP = 0.5


@dataclasses.dataclass
class DataConfig:
    data_dir: str | None = None
    synthetic: bool = False
    image_size: int = 224
    num_classes: int = 1000
    batch_size: int = 128  # per replica (per NPU / GPU / card), as in seed 000
    seed: int = 0
    crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE
    hflip: float = DEFAULT_HFLIP


# Layers in each of DenseNet-121's four dense blocks (Huang et al. 2017, table 1).
DENSENET121_BLOCKS = (6, 12, 24, 16)


@dataclasses.dataclass
class ModelConfig:
    dense_blocks: tuple[int, int, int, int] = DENSENET121_BLOCKS
    dropout_rate: float = 0.0
    initializer: str = "keras"  # seed 000's --version
    bn_momentum: float = 0.99  # Keras' default; 0.9 suits short runs (TF official ResNet)


@dataclasses.dataclass
class OptimConfig:
    optimizer: str = "sgd"
    lr: float = 0.06
    final_lr: float = 0.0
    lr_sched: str = "cosine"
    warmup_epochs: float = 5.0
    weight_decay: float = 1e-4
    weight_decay_convention: str = "l2_loss"
    momentum: float = 0.9
    nesterov: bool = False
    label_smoothing: float = 0.1


@dataclasses.dataclass
class RunConfig:
    mode: str = "train"
    device: str = "auto"
    precision: str = "fp32"
    max_epochs: float = 150.0
    max_train_steps: int | None = None
    iterations_per_loop: int = 10
    display_every: int = 100
    save_summary_steps: int = 100
    save_checkpoints_steps: int = 1000
    keep_checkpoints: int = 5
    do_checkpoint: bool = True
    epochs_between_evals: float = 1.0
    log_dir: str = "./model"
    log_name: str = "densenet121.log"
    eval_from: str | None = None  # --eval_dir / --checkpoint_dir / --only_eval
    eval_flag: str | None = None  # which of the three, for error messages
    pretrained: str | None = None
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_address: str = "0.0.0.0"
    rank_size: int | None = None
    group_size: int | None = None
    rank_table_timeout: float = 600.0
    export: bool = True
    xla: bool = False


@dataclasses.dataclass
class TrainerConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Seed 002 (Gaudi, keras_imagenet): "--dropout_rate 0.0, --weight_decay 1e-4, --optimizer sgd,
# --batch_size 64, --lr_sched steps, --initial_lr 5e-2, --final_lr 1e-5, --bfloat16 True,
# --epochs 90". Its step schedule has no warmup; its weight decay is Keras' l2 regularizer.
SEED002_DEFAULTS: dict[str, Any] = {
    "data.batch_size": 64,
    "optim.lr": 5e-2,
    "optim.final_lr": 1e-5,
    "optim.lr_sched": "steps",
    "optim.weight_decay_convention": "keras",
    "optim.warmup_epochs": 0.0,
    "run.precision": "bf16",
    "run.max_epochs": 90.0,
}


def default_of(dotted: str, seed002: bool = False) -> Any:
    """The default of ``section.field`` (seed 002's where it has one and ``seed002``)."""
    if seed002 and dotted in SEED002_DEFAULTS:
        return SEED002_DEFAULTS[dotted]
    section, field = dotted.split(".")
    return getattr(getattr(TrainerConfig(), section), field)
