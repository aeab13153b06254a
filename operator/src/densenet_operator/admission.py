"""The cluster admin's policy for jobs, evaluated as the API server evaluates the chart's
ValidatingAdmissionPolicy: its variables in order (each may use the ones before it), then every
validation; a validation that cannot be evaluated counts as failed (failurePolicy: Fail).

The rules' one source is ``admission_rules.yaml``; the chart installs them with the variables it
builds from values.yaml ``policy:``. The operator reads the installed policy back and calls
``violations`` before it creates pods, so a job admitted before the policy existed is held to
the same rules with the same messages (reason PolicyViolation). Pure: no I/O.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import celpy
import yaml
from celpy import celtypes

from . import k8scel

RULES_FILE = "admission_rules.yaml"
REASON = "PolicyViolation"


def rules() -> dict[str, Any]:
    """The variables and validations the chart's policy carries after its own variables."""
    text = resources.files(__package__).joinpath(RULES_FILE).read_text()
    return yaml.safe_load(text)


@functools.cache
def _program(expression: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=k8scel.FUNCTIONS)


def _evaluate(expression: str, activation: dict[str, Any]) -> Any:
    try:
        return _program(expression).evaluate(activation)
    except celpy.CELEvalError as err:
        return err
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return celpy.CELEvalError(str(exc))


def violations(policy: dict[str, Any], job: dict[str, Any], namespace: dict[str, Any]) -> list[str]:
    """The messages of the validations of ValidatingAdmissionPolicy ``policy`` (as stored)
    that ``job`` fails in ``namespace`` (the Namespace object); [] when it passes."""
    spec = policy.get("spec") or {}
    variables: dict[celtypes.StringType, Any] = {}
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(job),
        "namespaceObject": celpy.json_to_cel(namespace),
    }
    for variable in spec.get("variables") or []:
        activation["variables"] = celtypes.MapType(variables)
        variables[celtypes.StringType(variable["name"])] = _evaluate(
            variable["expression"], activation
        )
    activation["variables"] = celtypes.MapType(variables)
    failed = []
    for validation in spec.get("validations") or []:
        result = _evaluate(validation["expression"], activation)
        if not (isinstance(result, celtypes.BoolType) and bool(result)):
            failed.append(_message(validation, activation))
    return failed


def _message(validation: dict[str, Any], activation: dict[str, Any]) -> str:
    if "messageExpression" in validation:
        text = _evaluate(validation["messageExpression"], activation)
        if isinstance(text, str) and text.strip():
            return str(text)
    return validation.get("message") or f"failed expression: {validation['expression']}"
