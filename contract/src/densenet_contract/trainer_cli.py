"""The trainer's command line as the operator writes it: program names and every
densenet-train flag the operator passes. The trainer declares these flags under these names
(densenet_trainer.flags); tests/contract parses what the operator renders with the trainer's
own parser. Flag names are a user contract too (seed recipes, the trainer README): never
rename one.
"""

from __future__ import annotations

# Console scripts of the trainer package (trainer/pyproject.toml [project.scripts]).
TRAIN = "densenet-train"
LAUNCH = "densenet-launch"
# densenet-launch --nproc N -- densenet-train ...: one trainer process per local device.
LAUNCH_NPROC = "--nproc"
LAUNCH_END = "--"

# densenet-train --device: what each accelerator kind's pods pass (never "auto" from the
# operator, so a pod cannot fall back to the CPU silently).
DEVICE = "--device"
DEVICE_CPU = "cpu"
DEVICE_GPU = "gpu"
DEVICE_NPU = "npu"
DEVICE_HPU = "hpu"

MODE = "--mode"
# Data.
SYNTHETIC = "--synthetic"
DATA_DIR = "--data_dir"
NUM_CLASSES = "--num_classes"
IMAGE_SIZE = "--image_size"
BATCH_SIZE = "--batch_size"
CROP_SCALE = "--crop_scale"  # two values: MIN MAX
HFLIP = "--hflip"
# Model and optimisation.
DROPOUT_RATE = "--dropout_rate"
OPTIMIZER = "--optimizer"
LR = "--lr"
FINAL_LR = "--final_lr"
LR_SCHED = "--lr_sched"
WARMUP_EPOCHS = "--warmup_epochs"
WEIGHT_DECAY = "--weight_decay"
MOMENTUM = "--momentum"
LABEL_SMOOTHING = "--label_smoothing"
BFLOAT16 = "--bfloat16"  # boolean: "--bfloat16" alone, or "--bfloat16 false"
FP16 = "--fp16"
XLA = "--xla"  # boolean, written "--xla true" / "--xla false"
# The run.
MAX_EPOCHS = "--max_epochs"
MAX_TRAIN_STEPS = "--max_train_steps"
ITERATIONS_PER_LOOP = "--iterations_per_loop"
DISPLAY_EVERY = "--display_every"
EPOCHS_BETWEEN_EVALS = "--epochs_between_evals"
LOG_DIR = "--log_dir"
SAVE_CHECKPOINTS_STEPS = "--save_checkpoints_steps"
KEEP_CHECKPOINTS = "--keep_checkpoints"
CHECKPOINT_DIR = "--checkpoint_dir"
PRETRAINED = "--pretrained"
METRICS_PORT = "--metrics_port"  # 0 turns the endpoint off; densenet-launch adds the local rank

# Boolean flag values as the operator writes them; the trainer reads any of its spellings.
TRUE = "true"
FALSE = "false"

# densenet-train's other names for settings the operator writes (the seed recipes' spellings):
# given with the operator's flag, the trainer stops with a usage error.
DATASET_DIR = "--dataset_dir"  # --data_dir
INITIAL_LR = "--initial_lr"  # --lr
EPOCHS = "--epochs"  # --max_epochs
EVAL_DIR = "--eval_dir"  # --checkpoint_dir
ONLY_EVAL = "--only_eval"  # --checkpoint_dir and --mode evaluate
# densenet-train prints its help and exits 0: a job whose workers got it would succeed
# without training.
HELP = ("-h", "--help")

# What a job's spec.training.extraArgs may not hold, as FLAG or FLAG=VALUE: every
# densenet-train flag the operator writes (always, or from a spec field: that field is the way
# to set it), the trainer's other names for the same settings, and the help flags. The CRD's
# CEL rule lists the same flags; tests/contract checks it, and derives the other names from
# the trainer's own flag table.
EXTRA_ARGS_REFUSED = (
    DEVICE,
    MODE,
    SYNTHETIC,
    DATA_DIR,
    DATASET_DIR,
    NUM_CLASSES,
    IMAGE_SIZE,
    BATCH_SIZE,
    CROP_SCALE,
    HFLIP,
    DROPOUT_RATE,
    OPTIMIZER,
    LR,
    INITIAL_LR,
    FINAL_LR,
    LR_SCHED,
    WARMUP_EPOCHS,
    WEIGHT_DECAY,
    MOMENTUM,
    LABEL_SMOOTHING,
    BFLOAT16,
    FP16,
    XLA,
    MAX_EPOCHS,
    EPOCHS,
    MAX_TRAIN_STEPS,
    ITERATIONS_PER_LOOP,
    DISPLAY_EVERY,
    EPOCHS_BETWEEN_EVALS,
    LOG_DIR,
    SAVE_CHECKPOINTS_STEPS,
    KEEP_CHECKPOINTS,
    CHECKPOINT_DIR,
    EVAL_DIR,
    ONLY_EVAL,
    PRETRAINED,
    METRICS_PORT,
    *HELP,
)
