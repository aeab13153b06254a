"""The CRD applied offline: the defaults the API server would store, and refusals that name
the field. The same CRD file is checked against the real API server in test_api_validation."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import celpy
import pytest

from densenet_contract import env
from densenet_operator import k8scel, schema
from densenet_operator.render import ranktable, render
from densenet_operator.render.accelerators import gaudi
from tests.operator.jobs import JobBuilder, process_limit, process_limit_rule


def test_defaults_come_from_the_crd_and_leave_training_to_the_trainer():
    spec = schema.apply(JobBuilder().build())["spec"]
    assert spec["replicas"] == 1
    assert spec["accelerator"] == {"type": "cpu", "perPod": 1}
    assert spec["mode"] == "train"
    assert spec["metrics"] == {"enabled": True, "port": 9410}
    assert spec["runPolicy"] == {
        "backoffLimit": 3,
        "cleanPodPolicy": "Running",
        "suspend": False,
        "progressDeadlineSeconds": 600,
        "stalledAction": "None",
    }
    assert spec["ascend"] == {"rankTableVersion": "1.0", "source": "devicePlugin"}
    assert spec["gaudi"] == {"mode": "devicePlugin", "hugepages2Mi": "4Gi"}
    assert spec["checkpoint"] == {
        "path": "/checkpoints",
        "perJobDirectory": True,
        "terminationGracePeriodSeconds": 120,
    }
    assert spec["template"]["automountServiceAccountToken"] is False
    assert spec["template"]["securityContext"] == {}  # the image's user: see render
    # No training defaults: an unset field keeps densenet-train's own default.
    assert "training" not in spec


def test_nulls_are_dropped_and_numbers_become_floats_as_the_server_stores_them():
    job = (
        JobBuilder()
        .set("spec.training", {"maxSteps": None, "lr": 1, "epochs": 2})
        .set("spec.runPolicy", {"activeDeadlineSeconds": None})
        .build()
    )
    spec = schema.apply(job)["spec"]
    assert spec["training"] == {"lr": 1.0, "epochs": 2.0}
    assert isinstance(spec["training"]["lr"], float)
    assert "activeDeadlineSeconds" not in spec["runPolicy"]
    assert spec["runPolicy"]["backoffLimit"] == 3


def test_every_phase_the_crd_allows_has_a_series_in_the_phase_gauge():
    from densenet_operator import opmetrics

    status = schema.openapi_schema()["properties"]["status"]["properties"]
    assert set(status["phase"]["enum"]) == set(opmetrics.PHASES)


def test_trainer_enums_match_the_trainer():
    from densenet_trainer import config

    training = schema.openapi_schema()["properties"]["spec"]["properties"]["training"]
    props = training["properties"]
    assert set(props["optimizer"]["enum"]) == set(config.OPTIMIZERS)
    assert set(props["lrSchedule"]["enum"]) == set(config.LR_SCHEDULES)
    assert set(props["precision"]["enum"]) == set(config.PRECISIONS)
    metrics = schema.openapi_schema()["properties"]["spec"]["properties"]["metrics"]
    assert metrics["properties"]["port"]["default"] == config.DEFAULT_METRICS_PORT


@pytest.mark.parametrize(
    ("builder", "field"),
    [
        (JobBuilder().set("spec.trainig", {}), "spec.trainig"),
        (JobBuilder().set("spec.replicas", 0), "spec.replicas"),
        (JobBuilder().accelerator("tpu"), "spec.accelerator.type"),
        (JobBuilder().accelerator("ascend", 3), "spec.accelerator.perPod"),
        (JobBuilder().accelerator("cpu", 2), "spec.accelerator.perPod"),
        (JobBuilder().set("spec.dataset", {"format": "folder"}), "spec.dataset.path"),
        (JobBuilder().set("spec.mode", "evaluate"), "spec.evaluate.checkpoint"),
        (JobBuilder().set("spec.training", {"epochs": 1, "maxSteps": 5}), "spec.training.maxSteps"),
        (JobBuilder(name="x" * 53), "metadata.name"),
        (JobBuilder(name="9lives"), "metadata.name"),
        (
            JobBuilder().set("spec.template.env", [{"name": "TF_CONFIG", "value": "{}"}]),
            "spec.template.env",
        ),
    ],
)
def test_bad_jobs_are_refused_naming_the_field(builder, field):
    with pytest.raises(schema.InvalidJobError) as refused:
        schema.apply(builder.build())
    assert any(str(e).startswith(field) for e in refused.value.errors), refused.value.errors


def test_every_problem_is_reported_at_once():
    job = JobBuilder().set("spec.replicas", -1).set("spec.mode", "fit").build()
    with pytest.raises(schema.InvalidJobError) as refused:
        schema.apply(job)
    assert {e.field for e in refused.value.errors} == {"spec.replicas", "spec.mode"}


def test_rules_only_the_server_checks_are_named():
    assert schema.server_only_rules() == [
        "self.accelerator == oldSelf.accelerator && self.replicas == oldSelf.replicas"
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("+1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("500m", Decimal("0.5")),
        ("2k", Decimal(2000)),
        ("1E", Decimal(10) ** 18),
        ("64Gi", Decimal(64 * 2**30)),
        ("5e-3", Decimal("0.005")),
        ("1E3", Decimal(1000)),
        ("+", Decimal(0)),  # ParseQuantity's own leniency; the CRD's pattern refuses it
        ("1K", None),
        ("1ki", None),
        ("1e", None),
        ("1e1.5", None),
        ("1Mi1", None),
        (" 1", None),
        ("", None),
        ("1e99999999999999999999", None),  # beyond int64
    ],
)
def test_quantities_parse_as_kubernetes_parses_them(text, value):
    assert k8scel.parse(text) == value


def test_a_number_json_cannot_carry_or_int64_cannot_hold_is_a_field_error():
    for value, message in ((10**20, "1e+20 is not of type 'integer'"), (math.inf, "inf is not")):
        job = JobBuilder().set("spec.training.maxSteps", value).build()
        with pytest.raises(schema.InvalidJobError) as refused:
            schema.apply(job)
        (error,) = refused.value.errors
        assert error.field == "spec.training.maxSteps"
        assert message in error.message


def test_a_whole_float_is_an_integer_as_the_server_reads_it():
    job = JobBuilder().set("spec.training.maxSteps", 5.0).build()
    assert schema.apply(job)["spec"]["training"]["maxSteps"] == 5


def test_list_map_keys_are_unique():
    volume_mounts = [{"name": "a", "mountPath": "/x"}, {"name": "b", "mountPath": "/x"}]
    job = (
        JobBuilder()
        .set("spec.template.volumes", [{"name": "a", "emptyDir": {}}])
        .set("spec.template.volumeMounts", volume_mounts)
        .build()
    )
    with pytest.raises(schema.InvalidJobError) as refused:
        schema.apply(job)
    assert [str(e) for e in refused.value.errors] == [
        'spec.template.volumeMounts[1]: Duplicate value: {"mountPath":"/x"}'
    ]


def test_rules_on_map_values_name_the_entry_and_message_expressions_name_the_value():
    job = JobBuilder().set("spec.template.resources.requests", {"cpus": "1", "memory": "x"})
    with pytest.raises(schema.InvalidJobError) as refused:
        schema.apply(job.build())
    assert {e.field for e in refused.value.errors} == {
        "spec.template.resources.requests",
        "spec.template.resources.requests[memory]",
    }
    assert any("cpus is not a container resource" in str(e) for e in refused.value.errors)


def test_the_crd_knows_where_the_operator_mounts():
    spec = schema.openapi_schema()["properties"]["spec"]
    (rule,) = [
        r["rule"]
        for r in spec["x-kubernetes-validations"]
        if r.get("fieldPath") == ".template.volumeMounts"
    ]
    assert f"m.mountPath == '{ranktable.MOUNT_DIR}'" in rule
    (devices,) = re.findall(r"m\.mountPath\.startsWith\('(/dev/[^']+)'\)", rule)
    assert all(m["mountPath"].startswith(devices) for m in gaudi.host_devices(8)[1])
    assert f"m.mountPath == '{env.TF_CLUSTER_DIR}'" in rule


@pytest.mark.parametrize(
    ("replicas", "per_pod", "passes"),
    [(512, 8, True), (4096, 1, True), (513, 8, False), (4097, 1, False), (300, 16, False)],
)
def test_the_crd_limits_the_processes_of_a_job(replicas, per_pod, passes):
    """replicas x perPod <= 4096, evaluated as the server does (the bounds on each field
    alone keep a job under it today; the rule keeps raising either bound honest)."""
    rule = process_limit_rule()
    env = celpy.Environment()
    program = env.program(env.compile(rule["rule"]), functions=k8scel.FUNCTIONS)
    spec = {"replicas": replicas, "accelerator": {"type": "gaudi", "perPod": per_pod}}
    assert bool(program.evaluate({"self": celpy.json_to_cel(spec)})) is passes
    assert rule["fieldPath"] == ".replicas"
    assert "spec.replicas x spec.accelerator.perPod" in rule["message"]
    assert process_limit() == 4096


def test_the_crd_reserves_every_volume_name_the_operator_uses():
    spec = schema.openapi_schema()["properties"]["spec"]
    (rule,) = [
        r["rule"]
        for r in spec["x-kubernetes-validations"]
        if r.get("fieldPath") == ".template.volumes"
    ]
    (listed,) = re.findall(r"v\.name in \[([^\]]*)\]", rule)
    reserved = {name.strip().strip("'") for name in listed.split(",")}
    folder = {"format": "folder", "path": "/data", "volume": {"emptyDir": {}}}
    jobs = [
        JobBuilder().replicas(2).set("spec.dataset", folder),
        JobBuilder().accelerator("ascend", 2),
        JobBuilder().accelerator("gaudi", 2).set("spec.gaudi.mode", "hostDevices"),
    ]
    for job in jobs:
        job.set("spec.template.resources.requests.memory", "1Gi")
        for volume in render(job.defaulted(), "image").pods[0]["spec"]["volumes"]:
            assert volume["name"] in reserved or volume["name"].startswith("hl-"), volume
