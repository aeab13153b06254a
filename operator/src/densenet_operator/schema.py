"""The CRD's OpenAPI schema applied offline: defaults, unknown fields, types and CEL rules.

The CRD file (``crds/densenet.dev_densenettrainingjobs.yaml``) is the only place where the API's
defaults and validation live. The API server applies it to every object it stores; this module
applies the same file to a job read from disk, so ``densenet-operator render`` refuses what the
server would refuse, with the same field names, before anything reaches a cluster.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import celpy
import jsonschema
import yaml

CRD_FILE = "densenet.dev_densenettrainingjobs.yaml"
GROUP = "densenet.dev"
VERSION = "v1alpha1"
KIND = "DenseNetTrainingJob"
PLURAL = "densenettrainingjobs"
API_VERSION = f"{GROUP}/{VERSION}"

# Rules that compare with the stored object only make sense on an update: the server checks them.
TRANSITION_MARKER = "oldSelf"
ROOT = "(root)"


@dataclass(frozen=True)
class FieldError:
    """One problem with a job, named by its field path (``spec.accelerator.perPod``)."""

    field: str
    message: str

    def __str__(self) -> str:
        if self.message.startswith(self.field) or self.field == ROOT:
            return self.message
        return f"{self.field}: {self.message}"


class InvalidJobError(ValueError):
    """A job the API server would refuse; ``errors`` holds every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def crd_text() -> str:
    return resources.files("densenet_operator").joinpath("crds", CRD_FILE).read_text()


@functools.cache
def crd() -> dict[str, Any]:
    return yaml.safe_load(crd_text())


def openapi_schema() -> dict[str, Any]:
    """The served version's ``openAPIV3Schema``."""
    (version,) = (v for v in crd()["spec"]["versions"] if v["name"] == VERSION)
    return version["schema"]["openAPIV3Schema"]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _types(schema: dict[str, Any]) -> str | None:
    if schema.get("x-kubernetes-int-or-string"):
        return None
    return schema.get("type")


def _default_and_prune(
    schema: dict[str, Any], value: Any, path: str, errors: list[FieldError]
) -> Any:
    """Structural defaulting as the API server does it: nulls dropped, missing fields that have
    a default filled in (recursively, so a defaulted ``{}`` gets its own fields' defaults),
    numbers of ``type: number`` made floats. Unknown fields are reported, as strict field
    validation (kubectl's default) does."""
    kind = _types(schema)
    if kind == "object" and isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields", False)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            if key in properties:
                out[key] = _default_and_prune(properties[key], item, _join(path, key), errors)
            elif isinstance(extra, dict):
                out[key] = _default_and_prune(extra, item, _join(path, key), errors)
            elif keep_unknown or path == "metadata":  # the server owns metadata's schema
                out[key] = item
            else:
                errors.append(FieldError(_join(path, key), "unknown field; check its spelling"))
        for key, sub in properties.items():
            if key not in out and "default" in sub:
                default = copy.deepcopy(sub["default"])
                out[key] = _default_and_prune(sub, default, _join(path, key), errors)
        return out
    if kind == "array" and isinstance(value, list) and "items" in schema:
        return [
            _default_and_prune(schema["items"], item, _join(path, i), errors)
            for i, item in enumerate(value)
            if item is not None
        ]
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _schema_errors(schema: dict[str, Any], job: dict[str, Any]) -> list[FieldError]:
    validator = jsonschema.Draft4Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(job), key=lambda e: list(e.absolute_path)):
        path = ""
        for key in error.absolute_path:
            path = _join(path, key)
        message = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            path, message = _join(path, missing[0]), "is required"
        errors.append(FieldError(path or ROOT, message))
    return errors


@functools.cache
def _program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _cel_errors(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    """Evaluate every ``x-kubernetes-validations`` rule on the value it sits on."""
    errors: list[FieldError] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if TRANSITION_MARKER in rule["rule"]:
            continue
        try:
            passed = bool(_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)}))
        except celpy.CELEvalError:
            passed = False  # the server reports a rule it cannot evaluate as a failure too
        if not passed:
            field = (path + rule.get("fieldPath", "")).lstrip(".") or ROOT
            errors.append(FieldError(field, rule.get("message", rule["rule"])))
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors.extend(_cel_errors(sub, value[key], _join(path, key)))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors.extend(_cel_errors(schema["items"], item, _join(path, i)))
    return errors


def server_only_rules() -> list[str]:
    """CEL rules this module does not check offline (they compare with the stored object)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations", []):
                if TRANSITION_MARKER in rule["rule"]:
                    found.append(rule["rule"])
            for sub in node.values():
                walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(openapi_schema())
    return found


def apply(job: dict[str, Any]) -> dict[str, Any]:
    """Return ``job`` defaulted as the API server would store it; InvalidJobError if the server
    would refuse it (every problem found, each naming its field)."""
    if not isinstance(job, dict):
        raise InvalidJobError([FieldError(ROOT, "a job must be a YAML mapping")])
    errors: list[FieldError] = []
    if job.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}"))
    if job.get("kind") != KIND:
        errors.append(FieldError("kind", f"must be {KIND}"))
    if not (job.get("metadata") or {}).get("name"):
        errors.append(FieldError("metadata.name", "is required; name the job"))
    if errors:
        raise InvalidJobError(errors)
    schema = openapi_schema()
    defaulted = _default_and_prune(schema, job, "", errors)
    errors.extend(_schema_errors(schema, defaulted))
    if not errors:
        errors.extend(_cel_errors(schema, defaulted, ""))
    if errors:
        raise InvalidJobError(errors)
    return defaulted
