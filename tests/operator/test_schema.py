"""The CRD applied offline: the defaults the API server would store, and refusals that name
the field. The same CRD file is checked against the real API server in test_api_validation."""

from __future__ import annotations

import pytest

from densenet_operator import schema
from tests.operator.jobs import JobBuilder


def test_defaults_come_from_the_crd_and_leave_training_to_the_trainer():
    spec = schema.apply(JobBuilder().build())["spec"]
    assert spec["replicas"] == 1
    assert spec["accelerator"] == {"type": "cpu", "perPod": 1}
    assert spec["mode"] == "train"
    assert spec["metrics"] == {"enabled": True, "port": 9410}
    assert spec["runPolicy"] == {"backoffLimit": 3, "cleanPodPolicy": "Running", "suspend": False}
    assert spec["ascend"] == {"rankTableVersion": "1.0", "source": "devicePlugin"}
    assert spec["gaudi"] == {"mode": "devicePlugin", "hugepages2Mi": "4Gi"}
    assert spec["checkpoint"] == {"path": "/checkpoints"}
    assert spec["template"]["automountServiceAccountToken"] is False
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
