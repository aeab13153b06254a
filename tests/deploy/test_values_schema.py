"""values.schema.json: generated from values.yaml's comments, and helm refuses bad values with a
message that names the value."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from densenet_chart import values_schema

from tests.deploy.tools import CHART, render_error


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("watchNamespaces=team-a", "at '/watchNamespaces': got string, want array"),
        ("watchNamespaces={Team_A}", "at '/watchNamespaces/0': 'Team_A' does not match pattern"),
        ("operator.metricsPort=70000", "at '/operator/metricsPort': maximum"),
        ("monitoring.mode=on", "at '/monitoring/mode': value must be one of 'auto', 'always'"),
        ("monitoring.podMonitor.interval=often", "at '/monitoring/podMonitor/interval'"),
        ("monitoring.podMonitor.sampleLimit=0", "at '/monitoring/podMonitor/sampleLimit'"),
        ("rbac.create=maybe", "at '/rbac/create': got string, want boolean"),
        # A misspelt value is not silently ignored.
        ("imagee.tag=0.2.0", "additional properties 'imagee' not allowed"),
        ("operator.trainerimage=x", "additional properties 'trainerimage' not allowed"),
    ],
)
def test_bad_value_fails_naming_it(setting: str, message: str) -> None:
    stderr = render_error("--set", setting)
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr, stderr


def test_default_values_satisfy_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


def test_every_value_is_described() -> None:
    def walk(schema: dict, path: str) -> None:
        assert schema.get("description"), f"{path} has no description"
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{path}.{name}" if path else name)

    schema = json.loads((CHART / "values.schema.json").read_text())
    for name, sub in schema["properties"].items():
        walk(sub, name)


def test_generator_refuses_an_undocumented_value() -> None:
    text = "# Documented.\nimage:\n  # Documented too.\n  tag: ''\n  pullPolicy: Always\n"
    with pytest.raises(values_schema.ValuesDocError, match=r"image\.pullPolicy has no comment"):
        values_schema.generate(text)


def test_generator_reads_types_defaults_and_schema_lines() -> None:
    text = (
        "# How often.\n"
        '# @schema {"enum": ["a", "b"]}\n'
        "mode: a\n"
        "\n"
        "# Free-form settings.\n"
        '# @schema {"type": "object"}\n'
        "context:\n"
        "  runAsUser: 1\n"
        "# A port.\n"
        "port: 8000\n"
    )
    props = values_schema.generate(text)["properties"]
    assert props["mode"] == {
        "description": "How often.",
        "type": "string",
        "enum": ["a", "b"],
        "default": "a",
    }
    assert props["context"] == {
        "description": "Free-form settings.",
        "type": "object",
        "default": {"runAsUser": 1},
    }
    assert props["port"]["type"] == "integer"
