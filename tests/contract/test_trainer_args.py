"""The operator-to-trainer contract: every command line the operator renders is accepted by
the trainer's own parsers (densenet-launch's and densenet-train's) and means what the job
says. A renamed or retyped trainer flag, or a spec field sent to the wrong flag, fails here.

The intent (which spec field becomes which trainer setting) is written below by hand, not
taken from the operator's renderer: the test compares the trainer's whole resolved config with
the trainer's defaults overlaid by what the job sets.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from densenet_contract import env, ports, trainer_cli
from densenet_operator import cli, schema
from densenet_trainer import flags
from densenet_trainer.config import TrainerConfig
from densenet_trainer.launch import plan as launch
from tests.contract.pods import container_environ

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))

DEVICES = {"cpu": "cpu", "nvidia": "gpu", "ascend": "npu", "gaudi": "hpu"}
# Kinds that run one trainer process per device, under densenet-launch; the others run one
# process per pod (an NVIDIA pod's process sees all its GPUs).
LAUNCHED = {"ascend", "gaudi"}
# spec.training field -> the trainer config field it sets.
TRAINING = {
    "batchSize": "data.batch_size",
    "optimizer": "optim.optimizer",
    "lr": "optim.lr",
    "lrSchedule": "optim.lr_sched",
    "finalLr": "optim.final_lr",
    "warmupEpochs": "optim.warmup_epochs",
    "epochs": "run.max_epochs",
    "maxSteps": "run.max_train_steps",
    "weightDecay": "optim.weight_decay",
    "momentum": "optim.momentum",
    "labelSmoothing": "optim.label_smoothing",
    "dropoutRate": "model.dropout_rate",
    "precision": "run.precision",
    "xla": "run.xla",
    "iterationsPerLoop": "run.iterations_per_loop",
    "displayEvery": "run.display_every",
    "epochsBetweenEvals": "run.epochs_between_evals",
    "cropScale": "data.crop_scale",
    "hflip": "data.hflip",
}
# densenet-train flags the examples and the specs below pass in spec.training.extraArgs.
EXTRA_ARGS = {"--bn_momentum": ("model.bn_momentum", float), "--seed": ("data.seed", int)}

# One job that sets every spec field that maps to a trainer flag.
FULL: dict[str, Any] = {
    "apiVersion": schema.API_VERSION,
    "kind": schema.KIND,
    "metadata": {"name": "full", "namespace": "team-a"},
    "spec": {
        "replicas": 2,
        "accelerator": {"type": "cpu", "perPod": 1},
        "mode": "train_and_evaluate",
        "dataset": {
            "format": "tfrecord",
            "path": "/data/imagenet",
            "numClasses": 100,
            "imageSize": 160,
        },
        "training": {
            "batchSize": 48,
            "optimizer": "rmsprop",
            "lr": 0.125,
            "lrSchedule": "exp",
            "finalLr": 0.00001,
            "warmupEpochs": 1.5,
            "maxSteps": 777,
            "weightDecay": 0.00005,
            "momentum": 0.85,
            "labelSmoothing": 0.05,
            "dropoutRate": 0.2,
            "precision": "bf16",
            "xla": True,
            "iterationsPerLoop": 7,
            "displayEvery": 21,
            "epochsBetweenEvals": 2.5,
            "cropScale": [0.25, 0.9],
            "hflip": 0.3,
            "extraArgs": ["--seed", "7"],
        },
        "checkpoint": {
            "path": "/ckpt/full",
            "everySteps": 99,
            "keep": 3,
            "perJobDirectory": True,
            "terminationGracePeriodSeconds": 300,
        },
        "pretrained": "/weights/densenet121.h5",
        "metrics": {"enabled": True, "port": 9500},
    },
}


def _variant(**changes: Any) -> dict[str, Any]:
    """FULL with ``spec`` paths (``training.precision``) changed; None removes the field."""
    job = copy.deepcopy(FULL)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = job["spec"]
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return job


GAUDI_RESOURCES = {"requests": {"cpu": "8", "memory": "64Gi"}}
SPECS = {
    "cpu": FULL,
    "nvidia-epochs-fp16-no-metrics": _variant(
        accelerator={"type": "nvidia", "perPod": 4},
        training__maxSteps=None,
        training__epochs=12.5,
        training__precision="fp16",
        training__xla=False,
        metrics={"enabled": False},
    ),
    "ascend-fp32-synthetic": _variant(
        accelerator={"type": "ascend", "perPod": 8},
        dataset={"format": "synthetic", "numClasses": 10, "imageSize": 64},
        training__precision="fp32",
        training__extraArgs=["--bn_momentum", "0.9"],
    ),
    "gaudi-evaluate": _variant(
        accelerator={"type": "gaudi", "perPod": 8},
        mode="evaluate",
        evaluate={"checkpoint": "/ckpt/full/ckpt-700"},
        checkpoint__perJobDirectory=False,
        template={"resources": GAUDI_RESOURCES},
    ),
    "nvidia-evaluate-pretrained": _variant(
        accelerator={"type": "nvidia", "perPod": 1},
        mode="evaluate",
        dataset={"format": "folder", "path": "/data/digits"},
        training={"batchSize": 16},
    ),
}


def _rendered(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The objects `densenet-operator render -o json` prints for a job file."""
    assert cli.main(["render", "-f", str(path), "-o", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)["items"]


def _expected(job_name: str, spec: dict[str, Any], local_rank: int) -> dict[str, Any]:
    """The trainer config the job means: the trainer's defaults overlaid by what it sets."""
    want = TrainerConfig().to_dict()

    def put(dotted: str, value: Any) -> None:
        section, name = dotted.split(".")
        assert name in want[section], dotted
        want[section][name] = value

    dataset, training, checkpoint = spec["dataset"], spec.get("training", {}), spec["checkpoint"]
    put("run.device", DEVICES[spec["accelerator"]["type"]])
    put("run.mode", spec["mode"])
    put("data.synthetic", dataset["format"] == "synthetic")
    put("data.data_dir", None if dataset["format"] == "synthetic" else dataset["path"])
    if "numClasses" in dataset:
        put("data.num_classes", dataset["numClasses"])
    if "imageSize" in dataset:
        put("data.image_size", dataset["imageSize"])
    for field, dotted in TRAINING.items():
        if field in training:
            value = training[field]
            put(dotted, tuple(value) if isinstance(value, list) else value)
    extra = list(training.get("extraArgs", []))
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        assert flag in EXTRA_ARGS, f"say what {flag} means in EXTRA_ARGS"
        dotted, kind = EXTRA_ARGS[flag]
        put(dotted, kind(value))
    # Each job writes its own subdirectory of the checkpoint volume unless told otherwise.
    own = checkpoint["perJobDirectory"]
    put("run.log_dir", f"{checkpoint['path']}/{job_name}" if own else checkpoint["path"])
    if "everySteps" in checkpoint:
        put("run.save_checkpoints_steps", checkpoint["everySteps"])
    if "keep" in checkpoint:
        put("run.keep_checkpoints", checkpoint["keep"])
    if spec["mode"] == "evaluate":
        put("run.eval_from", spec["evaluate"]["checkpoint"] or spec["pretrained"])
        put("run.eval_flag", trainer_cli.CHECKPOINT_DIR[2:])
    elif spec["pretrained"]:
        put("run.pretrained", spec["pretrained"])
    metrics = spec["metrics"]
    put("run.metrics_port", metrics["port"] + local_rank if metrics["enabled"] else 0)
    return want


def _trainer_commands(
    pod: dict[str, Any], kind: str, per_pod: int, environ: dict[str, str]
) -> list[list[str]]:
    """Each trainer process's command line: the container's, or densenet-launch's children
    as the launcher itself builds them from the pod's command and environment."""
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    if kind not in LAUNCHED:
        return [command]
    assert command[0] == trainer_cli.LAUNCH, command
    plan = launch.parse(command[1:], environ)  # UserError: the launcher refuses the operator
    assert plan.nproc == per_pod
    index = int(pod["metadata"]["labels"]["densenet.dev/replica-index"])
    children = []
    for local_rank in range(plan.nproc):
        child_env = launch.child_env(environ, plan, local_rank)
        assert child_env[env.RANK] == str(index * per_pod + local_rank)
        children.append(launch.child_command(plan, local_rank))
    return children


def _check_job(job: dict[str, Any], items: list[dict[str, Any]], root: Path) -> int:
    spec = schema.apply(job)["spec"]
    pods = [item for item in items if item["kind"] == "Pod"]
    config_maps = [item for item in items if item["kind"] == "ConfigMap"]
    assert len(pods) == spec["replicas"]
    checked = 0
    for pod in pods:
        accelerator = spec["accelerator"]
        environ = container_environ(pod, config_maps, root / pod["metadata"]["name"])
        commands = _trainer_commands(pod, accelerator["type"], accelerator["perPod"], environ)
        for local_rank, command in enumerate(commands):
            assert command[0] == trainer_cli.TRAIN, command
            config = flags.parse(command[1:])  # UserError: the trainer refuses the operator
            want = _expected(job["metadata"]["name"], spec, local_rank)
            assert config.to_dict() == want, command
            checked += 1
        ports_declared = [p["name"] for p in pod["spec"]["containers"][0].get("ports", [])]
        if spec["metrics"]["enabled"]:
            assert ports_declared == [ports.metrics_port_name(j) for j in range(len(commands))]
    return checked


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_commands_the_trainer_accepts_as_meant(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = yaml.safe_load(path.read_text())
    assert _check_job(job, _rendered(path, capsys), tmp_path) >= 1


@pytest.mark.parametrize("name", SPECS)
def test_a_job_setting_every_field_renders_commands_the_trainer_accepts_as_meant(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(SPECS[name]))
    assert _check_job(SPECS[name], _rendered(path, capsys), tmp_path) >= 2


def test_the_full_job_sets_every_spec_field_that_maps_to_a_flag() -> None:
    """A field added to the CRD's spec.training must be added to TRAINING and to FULL."""
    spec = schema.openapi_schema()["properties"]["spec"]["properties"]
    training = set(spec["training"]["properties"])
    assert training == {*TRAINING, "extraArgs"}
    set_somewhere = {field for job in SPECS.values() for field in job["spec"]["training"]}
    assert set_somewhere == training
    assert set(FULL["spec"]["dataset"]) >= set(spec["dataset"]["properties"]) - {"volume"}
    assert set(FULL["spec"]["checkpoint"]) >= set(spec["checkpoint"]["properties"]) - {"volume"}
