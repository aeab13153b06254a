"""The seeds' own command lines keep their meaning; bad flags get one line and exit 2."""

from __future__ import annotations

import pytest
from trainer_cli import error_lines, run

from densenet_trainer import flags
from densenet_trainer.config import DEFAULT_METRICS_PORT
from densenet_trainer.errors import ExitCode, UserError

SEED000_TRAIN_1P = """--rank_size=1 --mode=train --max_train_steps=100 --iterations_per_loop=10
--data_dir=/opt/npu/slimImagenet --display_every=10 --log_dir=./model_1p
--log_name=densenet121_1p.log"""
SEED000_TRAIN_8P = """--rank_size=8 --mode=train_and_evaluate --max_epochs=150
--iterations_per_loop=5004 --epochs_between_evals=5 --data_dir=/opt/npu/slimImagenet --lr=0.1
--log_dir=./model_8p --log_name=densenet121_8p.log"""
SEED000_TEST = """--rank_size=1 --mode=evaluate --data_dir=/opt/npu/slimImagenet
--eval_dir=/scripts/result/8p/0/model_8p --log_dir=./ --log_name=eval_densenet121.log"""


def test_seed000_train_1p() -> None:
    c = flags.parse(SEED000_TRAIN_1P.split())
    assert (c.run.rank_size, c.run.mode, c.run.max_train_steps) == (1, "train", 100)
    assert (c.run.iterations_per_loop, c.run.display_every) == (10, 10)
    assert c.data.data_dir == "/opt/npu/slimImagenet" and not c.data.synthetic
    assert (c.run.log_dir, c.run.log_name) == ("./model_1p", "densenet121_1p.log")
    # seed 000's documented defaults
    assert (c.data.batch_size, c.optim.lr, c.run.max_epochs) == (128, 0.06, 150)
    assert (c.optim.weight_decay, c.optim.momentum, c.optim.label_smoothing) == (1e-4, 0.9, 0.1)
    assert (c.data.num_classes, c.run.save_summary_steps, c.run.precision) == (1000, 100, "fp32")
    assert c.run.metrics_port == DEFAULT_METRICS_PORT


def test_seed000_train_8p() -> None:
    c = flags.parse(SEED000_TRAIN_8P.split())
    assert (c.run.rank_size, c.run.mode, c.run.max_epochs) == (8, "train_and_evaluate", 150)
    assert (c.run.iterations_per_loop, c.run.epochs_between_evals, c.optim.lr) == (5004, 5, 0.1)
    assert c.run.max_train_steps is None
    assert (c.run.log_dir, c.run.log_name) == ("./model_8p", "densenet121_8p.log")


def test_seed000_test_block() -> None:
    c = flags.parse(SEED000_TEST.split())
    assert c.run.mode == "evaluate"
    assert c.run.eval_from == "/scripts/result/8p/0/model_8p"
    assert (c.run.log_dir, c.run.log_name) == ("./", "eval_densenet121.log")


def test_seed002_train_gets_seed002_defaults() -> None:
    c = flags.parse(["--dataset_dir", "/data/tfrecords"])
    assert c.data.data_dir == "/data/tfrecords" and c.run.mode == "train"
    assert (c.model.dropout_rate, c.optim.weight_decay, c.optim.optimizer) == (0.0, 1e-4, "sgd")
    assert (c.data.batch_size, c.optim.lr_sched, c.optim.lr, c.optim.final_lr) == (
        64,
        "steps",
        5e-2,
        1e-5,
    )
    assert (c.run.precision, c.run.max_epochs, c.optim.warmup_epochs) == ("bf16", 90, 0)


def test_seed002_only_eval() -> None:
    c = flags.parse(["--dataset_dir", "/data/tfrecords", "--only_eval", "/saves/model"])
    assert (c.run.mode, c.run.eval_from) == ("evaluate", "/saves/model")


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["--bfloat16", "false"], "fp32"),
        (["--bfloat16=False"], "fp32"),
        (["--bfloat16"], "bf16"),
        (["--fp16"], "fp16"),
    ],
)
def test_seed002_precision_flags(argv: list[str], value: str) -> None:
    assert flags.parse(["--dataset_dir", "/d", *argv]).run.precision == value


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--data_dir", "/a", "--dataset_dir", "/b"], ("--data_dir", "--dataset_dir")),
        (["--synthetic", "--lr", "0.1", "--initial_lr", "0.2"], ("--lr", "--initial_lr")),
        (["--synthetic", "--max_epochs", "3", "--epochs", "4"], ("--max_epochs", "--epochs")),
        (["--synthetic", "--bfloat16", "--fp16"], ("--bfloat16", "--fp16")),
        (["--synthetic", "--data_dir", "/a"], ("--data_dir", "--synthetic")),
        (["--data_dir", "/a", "--mode", "train", "--eval_dir", "/c"], ("--eval_dir", "--mode")),
        (
            ["--data_dir", "/a", "--eval_dir", "/c", "--checkpoint_dir", "/d"],
            ("--eval_dir", "--checkpoint_dir"),
        ),
        (["--synthetic", "--optimizer", "adam", "--nesterov"], ("--nesterov", "--optimizer")),
    ],
)
def test_conflicting_pairs_name_both_flags(argv: list[str], names: tuple[str, str]) -> None:
    with pytest.raises(UserError) as info:
        flags.parse(argv)
    assert info.value.exit_code == ExitCode.USAGE
    assert all(name in info.value.message for name in names)


def test_no_data_is_a_usage_error() -> None:
    with pytest.raises(UserError, match="--data_dir"):
        flags.parse([])


def test_every_flag_is_explained_in_help() -> None:
    parser = flags.build_parser()
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 10, action.option_strings


def test_unknown_flag_one_line_exit_2() -> None:
    result = run("--synthetic", "--learning_rate", "0.1", timeout=60)
    assert result.returncode == ExitCode.USAGE
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("densenet-train: error: ")
    assert "--learning_rate" in lines[0]
    assert "Traceback" not in result.stderr


def test_conflicting_pair_one_line_exit_2() -> None:
    result = run("--data_dir", "/a", "--dataset_dir", "/b", timeout=60)
    assert result.returncode == ExitCode.USAGE
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "--data_dir" in lines[0] and "--dataset_dir" in lines[0]


def test_help_lists_flags_and_exit_codes() -> None:
    result = run("--help", timeout=60)
    assert result.returncode == 0
    for name in ("--data_dir", "--dataset_dir", "--iterations_per_loop", "--device", "75"):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
        (["--max_epochs", "nan"], "argument --max_epochs: expected a finite number, got 'nan'"),
        (["--weight_decay", "inf"], "argument --weight_decay: expected a finite number"),
        (["--max_epochs", "0"], "argument --max_epochs: must be > 0, got 0.0"),
        (["--epochs_between_evals", "0"], "argument --epochs_between_evals: must be > 0"),
        (["--batch_size", "abc"], "argument --batch_size: expected an integer, got 'abc'"),
        (["--learning_rate", "0.1"], "unrecognized argument --learning_rate; did you mean --lr?"),
        (["--batchsize", "8"], "unrecognized argument --batchsize; did you mean --batch_size?"),
        (["--hflip", "1.5"], "argument --hflip: must be a probability in [0, 1], got 1.5"),
        (["--crop_scale", "0", "1"], "argument --crop_scale: must be an area fraction in (0, 1]"),
        (["--crop_scale", "0.9", "0.5"], "--crop_scale 0.9 0.5: MIN must not exceed MAX"),
        (["--crop_scale", "0.5"], "argument --crop_scale: expected 2 arguments"),
        (["--dense_blocks", "6,12,24"], "argument --dense_blocks: expected four comma-separated"),
        (["--dense_blocks", "6,12,0,16"], "argument --dense_blocks: must be >= 1, got 0"),
    ],
)
def test_bad_values_name_the_flag_and_the_fix(argv: list[str], message: str) -> None:
    with pytest.raises(UserError) as info:
        flags.parse(["--synthetic", *argv])
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.startswith(message), info.value.message


def test_nan_epochs_is_one_line_not_a_traceback() -> None:
    result = run("--synthetic", "--max_epochs", "nan", timeout=60)
    assert result.returncode == ExitCode.USAGE
    assert error_lines(result.stderr) == [
        "densenet-train: error: argument --max_epochs: expected a finite number, got 'nan' "
        "(see --help)"
    ]


def test_augmentation_flags_default_to_imagenet_and_take_timm_names() -> None:
    c = flags.parse(["--synthetic"])
    assert (c.data.crop_scale, c.data.hflip) == ((0.08, 1.0), 0.5)
    c = flags.parse(["--synthetic", "--crop_scale", "0.5", "1", "--hflip", "0"])
    assert (c.data.crop_scale, c.data.hflip) == ((0.5, 1.0), 0.0)


def test_every_flag_is_declared_once_and_sets_a_config_field() -> None:
    """flags.FLAGS is the one declaration: names are unique, each names a real config field,
    and every field a user can set has a flag (eval_flag records which flag was used)."""
    names = [flag.name for flag in flags.ALL_FLAGS]
    assert len(names) == len(set(names))
    fields = {
        f"{section}.{name}"
        for section, values in flags.cfg.TrainerConfig().to_dict().items()
        for name in values
    }
    declared = {flag.field for flag in flags.ALL_FLAGS}
    assert declared <= fields
    assert fields - declared == {"run.eval_flag"}
    parser_flags = {s for a in flags.build_parser()._actions for s in a.option_strings}
    assert set(names) == parser_flags - {"-h", "--help"}


def test_help_states_each_default_from_config() -> None:
    """Defaults are written once, in config.py: the help reads them from there."""
    helps = {a.option_strings[0]: a.help for a in flags.build_parser()._actions}
    assert helps["--batch_size"].endswith("(default: 128; 64 with --dataset_dir/--only_eval)")
    assert helps["--metrics_port"].endswith(f"(default: {DEFAULT_METRICS_PORT})")
    assert helps["--bfloat16"].endswith("(default: fp32; bf16 with --dataset_dir/--only_eval)")
    assert "(default:" not in helps["--fp16"] and "(default:" not in helps["--dataset_dir"]
