"""The CRD's OpenAPI schema applied offline: defaults, unknown fields, types and CEL rules.

The CRD file (``crds/densenet.dev_densenettrainingjobs.yaml``) is the only place where the API's
defaults and validation live. The API server applies it to every object it stores; this module
applies the same file to a job read from disk, so ``densenet-operator render`` refuses what the
server would refuse, with the same field names, before anything reaches a cluster.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import celpy
import jsonschema
import yaml

from . import k8scel

CRD_FILE = "densenet.dev_densenettrainingjobs.yaml"
GROUP = "densenet.dev"
VERSION = "v1alpha1"
KIND = "DenseNetTrainingJob"
PLURAL = "densenettrainingjobs"
API_VERSION = f"{GROUP}/{VERSION}"

# Rules that compare with the stored object only make sense on an update: the server checks them.
TRANSITION_MARKER = "oldSelf"
ROOT = "(root)"
INT64 = 2**63


@dataclass(frozen=True)
class FieldError:
    """One problem with a job, named by its field path (``spec.accelerator.perPod``)."""

    field: str
    message: str

    def __str__(self) -> str:
        # A message that starts with its field as a whole ("spec.x must ...") names it already.
        if self.field == ROOT or self.message.startswith((f"{self.field} ", f"{self.field}:")):
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


def spec_default(*path: str) -> Any:
    """The CRD's default of ``spec.<path>``: for a field added in this release, which a job
    stored under an older CRD (Helm never upgrades a chart's crds/) does not carry."""
    node = openapi_schema()["properties"]["spec"]
    for key in path:
        node = node["properties"][key]
    return node["default"]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _types(schema: dict[str, Any]) -> str | None:
    if schema.get("x-kubernetes-int-or-string"):
        return None
    return schema.get("type")


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _as_sent(value: Any, path: str, errors: list[FieldError]) -> Any:
    """``value`` as the API server decodes what kubectl sends: keys are strings, a whole number
    is an int64 when it fits and a float when it does not (Go's JSON), and a number that JSON
    cannot carry (inf, nan) is an error instead of a crash later."""
    if isinstance(value, dict):
        return {
            _json_key(k): _as_sent(v, _join(path, _json_key(k)), errors) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_as_sent(item, _join(path, i), errors) for i, item in enumerate(value)]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -INT64 <= value < INT64:
        return float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append(FieldError(path or ROOT, f"{value} is not a number JSON can carry"))
        elif value.is_integer() and -INT64 <= value < INT64:
            return int(value)
    return value


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


def _identity(schema: dict[str, Any], item: Any) -> str | None:
    """What makes an item of an ``x-kubernetes-list-type`` map or set list unique, as the
    server's "Duplicate value" prints it; None for any other list."""
    kind = schema.get("x-kubernetes-list-type")
    if kind == "map" and isinstance(item, dict):
        keys = schema.get("x-kubernetes-list-map-keys", [])
        return json.dumps({k: item.get(k) for k in keys}, separators=(",", ":"))
    if kind == "set":
        return json.dumps(item, separators=(",", ":"), sort_keys=True)
    return None


def _list_errors(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    """No two items of a map or set list with the same keys (or value)."""
    errors: list[FieldError] = []
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, extra if isinstance(extra, dict) else {})
            errors.extend(_list_errors(sub, item, _join(path, key)))
    elif isinstance(value, list):
        seen: set[str] = set()
        for i, item in enumerate(value):
            identity = _identity(schema, item)
            if identity in seen:
                errors.append(FieldError(_join(path, i), f"Duplicate value: {identity}"))
            elif identity is not None:
                seen.add(identity)
            errors.extend(_list_errors(schema.get("items", {}), item, _join(path, i)))
    return errors


def _schema_errors(schema: dict[str, Any], job: dict[str, Any]) -> list[FieldError]:
    validator = jsonschema.Draft4Validator(schema)
    found = sorted(validator.iter_errors(job), key=lambda e: list(e.absolute_path))
    # A value of the wrong type is reported once, not again for each bound it breaks.
    mistyped = {tuple(e.absolute_path) for e in found if e.validator == "type"}
    errors = []
    for error in found:
        if tuple(error.absolute_path) in mistyped and error.validator != "type":
            continue
        path = ""
        for key in error.absolute_path:
            path = _join(path, key)
        message = error.message
        if error.validator == "anyOf" and error.schema.get("x-kubernetes-int-or-string"):
            message = f"{error.instance!r} must be an integer or a string"
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            path, message = _join(path, missing[0]), "is required"
        errors.append(FieldError(path or ROOT, message))
    return errors


@functools.cache
def _program(expression: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=k8scel.FUNCTIONS)


def _evaluate(expression: str, value: Any) -> Any:
    """``expression`` on ``self``; CELEvalError also when it cannot be evaluated at all."""
    try:
        result = _program(expression).evaluate({"self": celpy.json_to_cel(value)})
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise celpy.CELEvalError(str(exc)) from exc
    if isinstance(result, celpy.CELEvalError):
        raise result
    return result


def _message(rule: dict[str, Any], value: Any) -> str:
    """The rule's messageExpression's result, else its message, else the rule (as the server)."""
    if "messageExpression" in rule:
        try:
            text = _evaluate(rule["messageExpression"], value)
        except celpy.CELEvalError:
            text = None
        if isinstance(text, str) and text.strip():
            return str(text)
    return rule.get("message") or f"failed rule: {rule['rule']}"


def _cel_errors(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    """Evaluate every ``x-kubernetes-validations`` rule on the value it sits on."""
    errors: list[FieldError] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if TRANSITION_MARKER in rule["rule"]:
            continue
        try:
            passed = bool(_evaluate(rule["rule"], value))
        except celpy.CELEvalError:
            passed = False  # the server reports a rule it cannot evaluate as a failure too
        if not passed:
            field = (path + rule.get("fieldPath", "")).lstrip(".") or ROOT
            errors.append(FieldError(field, _message(rule, value)))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                errors.extend(_cel_errors(properties[key], item, _join(path, key)))
            elif isinstance(extra, dict):  # the server names a map's entry path[key]
                errors.extend(_cel_errors(extra, item, f"{path}[{key}]"))
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
    job = _as_sent(job, "", errors)
    if errors:
        raise InvalidJobError(errors)
    defaulted = _default_and_prune(schema, job, "", errors)
    errors.extend(_schema_errors(schema, defaulted))
    # The rules once the types and bounds hold (the server skips them after a type error;
    # render after any, so that one problem stays one line).
    if not errors:
        errors.extend(_cel_errors(schema, defaulted, ""))
    errors.extend(_list_errors(schema, defaulted, ""))
    if errors:
        raise InvalidJobError(errors)
    return defaulted
