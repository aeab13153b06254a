"""The real API server refuses every bad job with a message naming the field, and
`densenet-operator render` refuses the same jobs offline, naming the same field. Every example
and everything `render` prints passes a server-side dry run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from densenet_operator import schema
from tests.kubectl import kubectl
from tests.operator.jobs import EXAMPLES, JobBuilder

pytestmark = pytest.mark.cluster

ONE_SERVER = [{"serverId": "s0", "devices": [{"deviceId": "0", "deviceIp": "192.168.100.101"}]}]

BAD_JOBS: list[tuple[str, JobBuilder, str]] = [
    ("no pods", JobBuilder().replicas(0), "spec.replicas"),
    ("too many pods", JobBuilder().replicas(513), "spec.replicas"),
    ("unknown accelerator", JobBuilder().accelerator("tpu"), "spec.accelerator.type"),
    ("ascend 3 per pod", JobBuilder().accelerator("ascend", 3), "spec.accelerator.perPod"),
    ("nvidia 9 per pod", JobBuilder().accelerator("nvidia", 9), "spec.accelerator.perPod"),
    ("gaudi 12 per pod", JobBuilder().accelerator("gaudi", 12), "spec.accelerator.perPod"),
    ("cpu 2 per pod", JobBuilder().accelerator("cpu", 2), "spec.accelerator.perPod"),
    ("no dataset", JobBuilder().set("spec.dataset", None), "spec.dataset"),
    ("dataset format", JobBuilder().set("spec.dataset.format", "csv"), "spec.dataset.format"),
    ("folder without path", JobBuilder().set("spec.dataset.format", "folder"), "spec.dataset.path"),
    ("evaluate nothing", JobBuilder().set("spec.mode", "evaluate"), "spec.evaluate.checkpoint"),
    ("unknown mode", JobBuilder().set("spec.mode", "fit"), "spec.mode"),
    (
        "epochs and maxSteps",
        JobBuilder().set("spec.training", {"epochs": 1, "maxSteps": 10}),
        "spec.training.maxSteps",
    ),
    ("name too long", JobBuilder(name="a" * 53), "metadata.name"),
    ("name not a DNS-1035 label", JobBuilder(name="9lives"), "metadata.name"),
    (
        "static without servers",
        JobBuilder().accelerator("ascend", 1).set("spec.ascend.source", "static"),
        "spec.ascend.servers",
    ),
    (
        "static, fewer servers than pods",
        JobBuilder()
        .accelerator("ascend", 1)
        .replicas(2)
        .set("spec.ascend", {"source": "static", "servers": ONE_SERVER}),
        "spec.ascend.servers",
    ),
    (
        "static, fewer devices than perPod",
        JobBuilder()
        .accelerator("ascend", 2)
        .set("spec.ascend", {"source": "static", "servers": ONE_SERVER}),
        "spec.ascend.servers",
    ),
    (
        "servers on a cpu job",
        JobBuilder().set("spec.ascend.servers", ONE_SERVER),
        "spec.ascend.servers",
    ),
    ("negative lr", JobBuilder().set("spec.training.lr", -0.1), "spec.training.lr"),
    ("fp8", JobBuilder().set("spec.training.precision", "fp8"), "spec.training.precision"),
    ("schedule", JobBuilder().set("spec.training.lrSchedule", "poly"), "spec.training.lrSchedule"),
    (
        "crop scale reversed",
        JobBuilder().set("spec.training.cropScale", [0.9, 0.1]),
        "spec.training.cropScale",
    ),
    (
        "crop scale of three",
        JobBuilder().set("spec.training.cropScale", [0.1, 0.5, 1]),
        "spec.training.cropScale",
    ),
    ("hflip above 1", JobBuilder().set("spec.training.hflip", 1.5), "spec.training.hflip"),
    (
        "env the operator owns",
        JobBuilder().set("spec.template.env", [{"name": "RANK_ID", "value": "3"}]),
        "spec.template.env",
    ),
    (
        "volume name the operator owns",
        JobBuilder().set("spec.template.volumes", [{"name": "dataset", "emptyDir": {}}]),
        "spec.template.volumes",
    ),
    (
        "clean pod policy",
        JobBuilder().set("spec.runPolicy.cleanPodPolicy", "Some"),
        "spec.runPolicy.cleanPodPolicy",
    ),
    (
        "kueue without queue",
        JobBuilder().set("spec.scheduling.gang", {"enabled": True, "provider": "kueue"}),
        "spec.scheduling.gang.queue",
    ),
    ("privileged port", JobBuilder().set("spec.metrics.port", 80), "spec.metrics.port"),
    (
        "rank table version",
        JobBuilder().set("spec.ascend.rankTableVersion", "2.0"),
        "spec.ascend.rankTableVersion",
    ),
    ("hugepages", JobBuilder().set("spec.gaudi.hugepages2Mi", "lots"), "spec.gaudi.hugepages2Mi"),
    (
        "relative checkpoint path",
        JobBuilder().set("spec.checkpoint.path", "ckpt"),
        "spec.checkpoint.path",
    ),
    (
        "gaudi without memory",
        JobBuilder().accelerator("gaudi", 8),
        "spec.template.resources.requests",
    ),
    ("misspelt field", JobBuilder().set("spec.trainig", {"lr": 0.1}), "spec.trainig"),
]


def test_at_least_twenty_distinct_bad_jobs():
    assert len({name for name, _, _ in BAD_JOBS}) == len(BAD_JOBS) >= 20


@pytest.mark.parametrize(
    ("builder", "field"), [(b, f) for _, b, f in BAD_JOBS], ids=[n for n, _, _ in BAD_JOBS]
)
def test_the_api_server_refuses_bad_jobs_naming_the_field(
    cluster, densenet_crd, namespace, builder, field
):
    manifest = yaml.safe_dump(builder.build())
    result = kubectl(
        cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=manifest
    )
    assert result.returncode != 0, f"the server accepted: {manifest}"
    assert field in result.stderr, result.stderr
    # render refuses it offline too, naming the same field.
    with pytest.raises(schema.InvalidJobError) as refused:
        schema.apply(builder.build())
    assert any(field in str(e) for e in refused.value.errors), refused.value.errors


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
