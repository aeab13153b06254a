"""The real API server and `densenet-operator render` refuse exactly the same jobs.

One corpus of bad jobs: the same YAML text goes to the server (`kubectl apply --dry-run=server`)
and to `render`; both must refuse it and name the same field. Each bad job has a good twin,
the same job without the bad part, which both must accept, and whose children (what `render`
prints) the server must accept too: a refusal can never pass for the wrong reason. Every
example and everything `render` prints passes a server-side dry run."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from densenet_contract import env, trainer_cli
from densenet_operator import cli, schema
from tests.kubectl import kubectl
from tests.operator.jobs import EXAMPLES, JobBuilder

pytestmark = pytest.mark.cluster

UNSET = object()
ONE_SERVER = [{"serverId": "s0", "devices": [{"deviceId": "0", "deviceIp": "192.168.100.101"}]}]
TWO_DEVICES = [
    {
        "serverId": "s0",
        "devices": [
            {"deviceId": "0", "deviceIp": "192.168.100.101"},
            {"deviceId": "1", "deviceIp": "192.168.101.101"},
        ],
    }
]
MEMORY = {"requests": {"memory": "64Gi"}}
FOLDER = {"format": "folder", "path": "/data", "volume": {"emptyDir": {}}}
VOLUME = [{"name": "extra", "emptyDir": {}}]


@dataclass(frozen=True)
class Case:
    name: str
    field: str  # what both refusals must name
    good: dict[str, Any]
    bad: dict[str, Any]


def case(
    name: str,
    field: str,
    path: str,
    good: Any,
    bad: Any,
    *,
    base: Callable[[], JobBuilder] = JobBuilder,
) -> Case:
    """A bad job and its good twin: ``base`` with ``path`` set to ``bad``, and to ``good``."""

    def build(value: Any) -> dict[str, Any]:
        builder = base()
        return (builder.unset(path) if value is UNSET else builder.set(path, value)).build()

    return Case(name, field, build(good), build(bad))


def ascend(per_pod: int = 1, replicas: int = 1) -> Callable[[], JobBuilder]:
    return lambda: JobBuilder().accelerator("ascend", per_pod).replicas(replicas)


def static_ascend(per_pod: int = 1, replicas: int = 1) -> Callable[[], JobBuilder]:
    return lambda: ascend(per_pod, replicas)().set("spec.ascend.source", "static")


def gaudi(per_pod: int = 8) -> JobBuilder:
    return JobBuilder().accelerator("gaudi", per_pod).set("spec.template.resources", MEMORY)


def nvidia() -> JobBuilder:
    return JobBuilder().accelerator("nvidia", 1)


def with_volume() -> JobBuilder:
    return JobBuilder().set("spec.template.volumes", VOLUME)


def mounts(*paths: str) -> list[dict[str, str]]:
    return [{"name": "extra", "mountPath": p} for p in paths]


def variable(name: str) -> list[dict[str, str]]:
    return [{"name": name, "value": "1"}]


CPU_REQUESTS = "spec.template.resources.requests"

CORPUS: list[Case] = [
    # --- shape, counts and kinds ---
    case("no pods", "spec.replicas", "spec.replicas", 1, 0),
    case("too many pods", "spec.replicas", "spec.replicas", 4, 513),
    case("unknown accelerator", "spec.accelerator.type", "spec.accelerator.type", "cpu", "tpu"),
    case(
        "ascend 3 per pod",
        "spec.accelerator.perPod",
        "spec.accelerator.perPod",
        2,
        3,
        base=ascend(),
    ),
    case(
        "nvidia 9 per pod",
        "spec.accelerator.perPod",
        "spec.accelerator.perPod",
        8,
        9,
        base=nvidia,
    ),
    case(
        "gaudi 12 per pod", "spec.accelerator.perPod", "spec.accelerator.perPod", 8, 12, base=gaudi
    ),
    case("cpu 2 per pod", "spec.accelerator.perPod", "spec.accelerator.perPod", 1, 2),
    case("no dataset", "spec.dataset", "spec.dataset", {"format": "synthetic"}, UNSET),
    case("dataset format", "spec.dataset.format", "spec.dataset.format", "synthetic", "csv"),
    case(
        "folder without path",
        "spec.dataset.path",
        "spec.dataset.path",
        "/data",
        UNSET,
        base=lambda: JobBuilder().set("spec.dataset.format", "folder"),
    ),
    case(
        "evaluate nothing",
        "spec.evaluate.checkpoint",
        "spec.evaluate.checkpoint",
        "/checkpoints/model",
        UNSET,
        base=lambda: JobBuilder().set("spec.mode", "evaluate"),
    ),
    case("unknown mode", "spec.mode", "spec.mode", "train", "fit"),
    case(
        "epochs and maxSteps",
        "spec.training.maxSteps",
        "spec.training",
        {"maxSteps": 10},
        {"epochs": 1, "maxSteps": 10},
    ),
    case("name too long", "metadata.name", "metadata.name", "a" * 52, "a" * 53),
    case("name not a DNS-1035 label", "metadata.name", "metadata.name", "lives9", "9lives"),
    case(
        "static without servers",
        "spec.ascend.servers",
        "spec.ascend.servers",
        ONE_SERVER,
        UNSET,
        base=static_ascend(),
    ),
    case(
        "static, fewer servers than pods",
        "spec.ascend.servers",
        "spec.ascend.servers",
        ONE_SERVER * 2,
        ONE_SERVER,
        base=static_ascend(replicas=2),
    ),
    case(
        "static, fewer devices than perPod",
        "spec.ascend.servers",
        "spec.ascend.servers",
        TWO_DEVICES,
        ONE_SERVER,
        base=static_ascend(per_pod=2),
    ),
    case("servers on a cpu job", "spec.ascend.servers", "spec.ascend.servers", UNSET, ONE_SERVER),
    # --- training ---
    case("negative lr", "spec.training.lr", "spec.training.lr", 0.1, -0.1),
    case("fp8", "spec.training.precision", "spec.training.precision", "bf16", "fp8"),
    case("schedule", "spec.training.lrSchedule", "spec.training.lrSchedule", "cosine", "poly"),
    case(
        "crop scale reversed",
        "spec.training.cropScale",
        "spec.training.cropScale",
        [0.1, 0.9],
        [0.9, 0.1],
    ),
    case(
        "crop scale of three",
        "spec.training.cropScale",
        "spec.training.cropScale",
        [0.1, 0.5],
        [0.1, 0.5, 1],
    ),
    case("hflip above 1", "spec.training.hflip", "spec.training.hflip", 0.5, 1.5),
    case(
        "misspelt field",
        "spec.trainig",
        "spec.trainig",
        UNSET,
        {"lr": 0.1},
        base=lambda: JobBuilder().set("spec.training", {"lr": 0.1}),
    ),
    # --- numbers too big for the field, or for int64 ---
    case("maxSteps 1e20", "spec.training.maxSteps", "spec.training.maxSteps", 1000, 1e20),
    case(
        "maxSteps above its maximum",
        "spec.training.maxSteps",
        "spec.training.maxSteps",
        10**12,
        10**12 + 1,
    ),
    case(
        "deadline beyond int64",
        "spec.runPolicy.activeDeadlineSeconds",
        "spec.runPolicy.activeDeadlineSeconds",
        3600,
        10**20,
    ),
    # --- environment variables the operator or the devices own ---
    case(
        "env the operator owns",
        "spec.template.env[0].name",
        "spec.template.env",
        variable("MY_RANK"),
        variable(env.RANK_ID),
    ),
    case(
        "TF_CONFIG in env",
        "spec.template.env[0].name",
        "spec.template.env",
        variable("MY_CONFIG"),
        variable(env.TF_CONFIG),
    ),
    case(
        "any DENSENET_ variable",
        "spec.template.env[0].name",
        "spec.template.env",
        variable("VENDOR_ENV"),
        variable("DENSENET_VENDOR_ENV"),
    ),
    case(
        "rank table variable",
        "spec.template.env[1].name",
        "spec.template.env",
        variable("A") + variable("MY_TABLE"),
        variable("A") + variable(env.RANK_TABLE_FILE),
        base=ascend(),
    ),
    case(
        "every GPU of the node",
        "spec.template.env[0].name",
        "spec.template.env",
        [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"}],
        [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
        base=nvidia,
    ),
    case(
        "Ascend device list",
        "spec.template.env[0].name",
        "spec.template.env",
        variable("ASCEND_GLOBAL_LOG_LEVEL"),
        variable(env.ASCEND_VISIBLE_DEVICES),
        base=ascend(),
    ),
    case(
        "Habana device list",
        "spec.template.env[0].name",
        "spec.template.env",
        variable("LOG_LEVEL_ALL"),
        variable(env.HABANA_VISIBLE_DEVICES),
        base=gaudi,
    ),
    case(
        "Habana module id",
        "spec.template.env[0].name",
        "spec.template.env",
        variable("LOG_LEVEL_ALL"),
        variable(env.HLS_MODULE_ID),
        base=gaudi,
    ),
    # --- extraArgs: flags the operator writes, and help ---
    case(
        "extraArgs --help",
        "spec.training.extraArgs[0]",
        "spec.training.extraArgs",
        ["--seed", "3"],
        ["--help"],
    ),
    case(
        "extraArgs -h",
        "spec.training.extraArgs[2]",
        "spec.training.extraArgs",
        ["--seed", "3"],
        ["--seed", "3", "-h"],
    ),
    case(
        "extraArgs --log_dir",
        "spec.training.extraArgs[0]",
        "spec.training.extraArgs",
        ["--log_name", "train.log"],
        [trainer_cli.LOG_DIR, "/tmp/elsewhere"],
    ),
    case(
        "extraArgs --metrics_port=",
        "spec.training.extraArgs[0]",
        "spec.training.extraArgs",
        ["--metrics_address=0.0.0.0"],
        [f"{trainer_cli.METRICS_PORT}=9999"],
    ),
    case(
        "extraArgs --device",
        "spec.training.extraArgs[0]",
        "spec.training.extraArgs",
        ["--nesterov"],
        [f"{trainer_cli.DEVICE}=cpu"],
        base=nvidia,
    ),
    case(
        "extraArgs --max_train_steps around epochs",
        "spec.training.extraArgs[0]",
        "spec.training.extraArgs",
        ["--seed", "3"],
        [trainer_cli.MAX_TRAIN_STEPS, "5"],
        base=lambda: JobBuilder().set("spec.training.epochs", 1),
    ),
    case(
        "extraArgs other name of a flag",
        "spec.training.extraArgs[0]",
        "spec.training.extraArgs",
        ["--seed", "3"],
        [trainer_cli.EPOCHS, "5"],
    ),
    # --- ports ---
    case("privileged port", "spec.metrics.port", "spec.metrics.port", 1024, 80),
    case("metrics on TF's port", "spec.metrics.port", "spec.metrics.port", 2223, 2222),
    case(
        "gaudi metrics below TF's ports",
        "spec.metrics.port",
        "spec.metrics.port",
        2406,
        2407,
        base=lambda: gaudi(4),
    ),
    case(
        "gaudi metrics above TF's first port",
        "spec.metrics.port",
        "spec.metrics.port",
        2414,
        2413,
        base=lambda: gaudi(4),
    ),
    # --- resources, labels and annotations as the pod's validation reads them ---
    case(
        "quantity that is not one",
        f"{CPU_REQUESTS}[cpu]",
        f"{CPU_REQUESTS}.cpu",
        "2",
        "2 cores",
    ),
    case("negative quantity", f"{CPU_REQUESTS}[memory]", f"{CPU_REQUESTS}.memory", "1Gi", "-1Gi"),
    case("fractional number", f"{CPU_REQUESTS}.cpu", f"{CPU_REQUESTS}.cpu", "500m", 0.5),
    case(
        "not a resource name",
        CPU_REQUESTS,
        "spec.template.resources.requests",
        {"cpu": 2},
        {"cpus": 2},
    ),
    case(
        "request above limit",
        CPU_REQUESTS,
        "spec.template.resources",
        {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}},
        {"requests": {"cpu": "2500m"}, "limits": {"cpu": "2"}},
    ),
    case(
        "label key",
        "spec.template.metadata.labels",
        "spec.template.metadata.labels",
        {"example.com/team": "vision"},
        {"example.com/team one": "vision"},
    ),
    case(
        "label value",
        "spec.template.metadata.labels",
        "spec.template.metadata.labels",
        {"team": "vision-1"},
        {"team": "vision 1"},
    ),
    case(
        "label value too long",
        "spec.template.metadata.labels.team",
        "spec.template.metadata.labels",
        {"team": "v" * 63},
        {"team": "v" * 64},
    ),
    case(
        "annotation key",
        "spec.template.metadata.annotations",
        "spec.template.metadata.annotations",
        {"example.com/note": "any text at all"},
        {"example.com//note": "any text at all"},
    ),
    case(
        "node selector key",
        "spec.scheduling.nodeSelector",
        "spec.scheduling.nodeSelector",
        {"example.com/pool": "a"},
        {"-pool": "a"},
    ),
    # --- paths and mounts ---
    case("relative dataset path", "spec.dataset.path", "spec.dataset.path", "/data", "data"),
    case(
        "relative dataset path with a volume",
        "spec.dataset.path",
        "spec.dataset",
        FOLDER,
        {**FOLDER, "path": "data"},
    ),
    case(
        "dataset mounted over /",
        "spec.dataset.path",
        "spec.dataset",
        FOLDER,
        {**FOLDER, "path": "/"},
    ),
    case("relative checkpoint path", "spec.checkpoint.path", "spec.checkpoint.path", "/c", "ckpt"),
    case("checkpoints mounted over /", "spec.checkpoint.path", "spec.checkpoint.path", "/c", "/"),
    case(
        "dataset and checkpoints at one path",
        "spec.dataset.path",
        "spec.checkpoint.path",
        "/checkpoints",
        "/data",
        base=lambda: JobBuilder().set("spec.dataset", FOLDER),
    ),
    case(
        "duplicate mount paths",
        "spec.template.volumeMounts[1]",
        "spec.template.volumeMounts",
        mounts("/x", "/y"),
        mounts("/x", "/x"),
        base=with_volume,
    ),
    case(
        "mount over /",
        "spec.template.volumeMounts[0].mountPath",
        "spec.template.volumeMounts",
        mounts("/x"),
        mounts("/"),
        base=with_volume,
    ),
    case(
        "mount over the checkpoints",
        "spec.template.volumeMounts",
        "spec.template.volumeMounts",
        mounts("/checkpoints/extra"),
        mounts("/checkpoints"),
        base=with_volume,
    ),
    case(
        "mount over the rank table",
        "spec.template.volumeMounts",
        "spec.template.volumeMounts",
        mounts("/user/serverid"),
        mounts("/user/serverid/devindex/config"),
        base=lambda: ascend()().set("spec.template.volumes", VOLUME),
    ),
    case(
        "mount over the tf cluster file",
        "spec.template.volumeMounts",
        "spec.template.volumeMounts",
        mounts("/etc/densenet"),
        mounts(env.TF_CLUSTER_DIR),
        base=with_volume,
    ),
    # --- the rest of the spec ---
    case(
        "volume name the operator owns",
        "spec.template.volumes",
        "spec.template.volumes",
        [{"name": "data", "emptyDir": {}}],
        [{"name": "dataset", "emptyDir": {}}],
    ),
    case(
        "volume name of the tf cluster",
        "spec.template.volumes",
        "spec.template.volumes",
        [{"name": "cluster", "emptyDir": {}}],
        [{"name": "tf-cluster", "emptyDir": {}}],
    ),
    case(
        "clean pod policy",
        "spec.runPolicy.cleanPodPolicy",
        "spec.runPolicy.cleanPodPolicy",
        "All",
        "Some",
    ),
    case(
        "kueue without queue",
        "spec.scheduling.gang.queue",
        "spec.scheduling.gang",
        {"enabled": True, "provider": "kueue", "queue": "team-a"},
        {"enabled": True, "provider": "kueue"},
    ),
    case(
        "rank table version",
        "spec.ascend.rankTableVersion",
        "spec.ascend.rankTableVersion",
        "0",
        "2.0",
    ),
    case(
        "hugepages", "spec.gaudi.hugepages2Mi", "spec.gaudi.hugepages2Mi", "2Gi", "lots", base=gaudi
    ),
    case(
        "gaudi without memory",
        "spec.template.resources.requests",
        "spec.template.resources",
        MEMORY,
        UNSET,
        base=lambda: JobBuilder().accelerator("gaudi", 8),
    ),
]


def _yaml(job: dict[str, Any]) -> str:
    """The job as a user's file: kubectl and render read the same text."""
    return yaml.dump(job, Dumper=cli._Dumper, sort_keys=False)


def _names(field: str) -> re.Pattern[str]:
    """``field`` named as a whole: spec.template.env does not match spec.template.env[0]."""
    return re.compile(rf"(?<![\w.\]]){re.escape(field)}(?![\w.\[])")


@dataclass(frozen=True)
class Rendered:
    code: int
    stdout: str
    stderr: str


def render(tmp_path: Path, text: str, namespace: str) -> Rendered:
    """`densenet-operator render -n NAMESPACE -f FILE`, in this process (as fast as a call)."""
    path = tmp_path / "job.yaml"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["render", "-n", namespace, "-f", str(path)])
    return Rendered(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def corpus_namespace(core_v1, densenet_crd) -> Iterator[str]:
    name = f"api-validation-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace({"metadata": {"name": name, "labels": {"densenet.dev/test": "true"}}})
    yield name
    core_v1.delete_namespace(name, propagation_policy="Background")


def test_the_corpus_is_large_and_every_case_changes_one_job():
    assert len({c.name for c in CORPUS}) == len(CORPUS) >= 60
    for c in CORPUS:
        assert c.good != c.bad, c.name


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_server_and_render_refuse_the_bad_job_naming_the_field_and_accept_its_twin(
    cluster, corpus_namespace, tmp_path, case
):
    field = _names(case.field)
    bad = _yaml(case.bad)
    server = kubectl(
        cluster, "apply", "--dry-run=server", "-n", corpus_namespace, "-f", "-", stdin=bad
    )
    assert server.returncode != 0, f"the server accepted:\n{bad}"
    assert field.search(server.stderr), server.stderr
    refused = render(tmp_path, bad, corpus_namespace)
    assert refused.code == cli.EXIT_BAD_INPUT, refused
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr  # one problem, one line
    assert lines[0].startswith(f"{cli.PROG}: error: "), lines[0]
    assert field.search(lines[0]), lines[0]

    # The good twin: accepted by both, and its children by the server.
    good = _yaml(case.good)
    accepted = render(tmp_path, good, corpus_namespace)
    assert accepted.code == 0, accepted.stderr
    objects = [o for o in yaml.safe_load_all(accepted.stdout) if o]
    assert any(o["kind"] == "Pod" for o in objects)
    server = kubectl(
        cluster,
        "apply",
        "--dry-run=server",
        "-n",
        corpus_namespace,
        "-f",
        "-",
        stdin=good + accepted.stdout,
    )
    assert server.returncode == 0, server.stderr
    assert server.stdout.count("(server dry run)") == 1 + len(objects), server.stdout


# What spec.template.resources takes: Kubernetes quantities of at least 0 whose exponent, if
# any, has at most two digits (a longer one can keep the API server busy for minutes).
# fmt: off
GOOD_QUANTITIES = [
    "1", "0", "+1", ".5", "1.5", "500m", "1u", "1n", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki",
    "64Gi", "1Ei", "1e3", "1E3", "5e-3", "1e+3", "1e99", "1e-99", "12345678901234567890123",
]
BAD_QUANTITIES = [
    "-1", "-0.5", "1.", ".", "+", "G", "Ki", "1K", "1ki", "1e", "1e1.5", "1.2.3", "", " 1",
    "1 ", "0x10", "1Mi1", "one", "Infinity", "1e100", "1e-1000000",
]
# fmt: on


def test_quantities_are_read_as_the_server_reads_them(cluster, corpus_namespace, tmp_path):
    """Each string as a request of its own: the server and render refuse the same ones."""
    quantities = GOOD_QUANTITIES + BAD_QUANTITIES
    refused_by_server: set[str] = set()
    refused_offline: set[str] = set()
    found = re.compile(r"requests\[example\.com/q(\d+)\]")
    for start in range(0, len(quantities), 16):  # spec.template.resources.requests: 32 at most
        chunk = quantities[start : start + 16]
        requests = {f"example.com/q{start + i}": q for i, q in enumerate(chunk)}
        text = _yaml(JobBuilder().set(CPU_REQUESTS, requests).build())
        server = kubectl(
            cluster, "apply", "--dry-run=server", "-n", corpus_namespace, "-f", "-", stdin=text
        )
        refused_by_server |= {quantities[int(i)] for i in found.findall(server.stderr)}
        offline = render(tmp_path, text, corpus_namespace)
        refused_offline |= {quantities[int(i)] for i in found.findall(offline.stderr)}
    assert refused_by_server == refused_offline == set(BAD_QUANTITIES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_and_their_rendered_children_pass_a_server_dry_run(
    cluster, densenet_crd, namespace, example
):
    accepted = kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f", str(example))
    assert accepted.returncode == 0, accepted.stderr
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "densenet_operator.cli",
            "render",
            "-n",
            namespace,
            "-f",
            str(example),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    objects = list(yaml.safe_load_all(rendered.stdout))
    assert {o["kind"] for o in objects} >= {"Service", "Pod"}
    applied = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=rendered.stdout)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("(server dry run)") == len(objects)


def test_server_defaults_match_the_offline_defaults(cluster, densenet_crd, namespace):
    job = JobBuilder("defaults", namespace=namespace).build()
    created = kubectl(
        cluster, "create", "-f", "-", "-o", "yaml", stdin=yaml.safe_dump(job), check=True
    )
    stored = yaml.safe_load(created.stdout)
    assert stored["spec"] == schema.apply(job)["spec"]


def test_accelerator_and_replicas_cannot_change(cluster, densenet_crd, namespace):
    job = JobBuilder("fixed", namespace=namespace).build()
    kubectl(cluster, "create", "-f", "-", stdin=yaml.safe_dump(job), check=True)
    patch = '{"spec": {"replicas": 4}}'
    result = kubectl(
        cluster, "patch", "-n", namespace, "dntj", "fixed", "--type=merge", "-p", patch
    )
    assert result.returncode != 0
    assert "spec.accelerator" in result.stderr and "cannot change" in result.stderr
