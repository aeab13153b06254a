"""values.schema.json from values.yaml: one source for every value's default, type and meaning.

Each value in values.yaml is preceded by comment lines: the sentence becomes the value's
description, and a `# @schema {...}` line adds JSON-schema keywords (enum, pattern, minimum, or
a whole "type" for free-form objects whose keys are not listed). Otherwise the type comes from
the default. Objects list their keys and accept no others, so a misspelt value fails at install.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

SCHEMA_KEYWORD = "@schema"
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")
_COMMENT_LINE = re.compile(r"^(?P<indent> *)#\s?(?P<text>.*)$")


class ValuesDocError(ValueError):
    """values.yaml breaks the conventions the schema is generated from."""


@dataclass
class _Doc:
    description: list[str] = field(default_factory=list)
    schema: dict[str, Any] = field(default_factory=dict)


def _comments(lines: list[str]) -> dict[tuple[str, ...], _Doc]:
    """Key path -> the comment block directly above that key (no blank line between)."""
    docs: dict[tuple[str, ...], _Doc] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            pending = []
            continue
        comment = _COMMENT_LINE.match(line)
        if comment:
            pending.append(comment.group("text"))
            continue
        key = _KEY_LINE.match(line)
        if not key:  # a list item or continuation of a value
            pending = []
            continue
        indent = len(key.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key.group("key")))
        doc = _Doc()
        for text in pending:
            if text.startswith(SCHEMA_KEYWORD):
                try:
                    doc.schema.update(json.loads(text[len(SCHEMA_KEYWORD) :]))
                except json.JSONDecodeError as exc:
                    message = f"line {number - 1}: bad {SCHEMA_KEYWORD} JSON: {exc}"
                    raise ValuesDocError(message) from exc
            else:
                doc.description.append(text.strip())
        docs[tuple(k for _, k in stack)] = doc
        pending = []
    return docs


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise ValuesDocError(f"cannot infer a schema type for {value!r}")


def _schema(value: Any, path: tuple[str, ...], docs: dict[tuple[str, ...], _Doc]) -> dict[str, Any]:
    name = ".".join(path)
    doc = docs.get(path)
    if doc is None or not doc.description:
        raise ValuesDocError(f"value {name} has no comment: write one sentence above it")
    schema: dict[str, Any] = {"description": " ".join(doc.description)}
    if "type" in doc.schema:  # free-form: the comment gives the whole schema
        schema.update(doc.schema)
        schema["default"] = value
        return schema
    schema["type"] = _type_of(value)
    if isinstance(value, dict) and value:
        schema["properties"] = {k: _schema(v, (*path, k), docs) for k, v in value.items()}
        schema["additionalProperties"] = False
    schema.update(doc.schema)
    if "properties" not in schema:  # an object's default is its properties' defaults
        schema["default"] = value
    return schema


def generate(values_text: str) -> dict[str, Any]:
    """The JSON schema of a values.yaml text."""
    values = yaml.safe_load(values_text)
    if not isinstance(values, dict):
        raise ValuesDocError("values.yaml must be a mapping")
    docs = _comments(values_text.splitlines())
    properties = {k: _schema(v, (k,), docs) for k, v in values.items()}
    # A parent chart passes `global` to every subchart.
    properties["global"] = {"type": "object", "description": "Values a parent chart shares."}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "densenet-operator chart values",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def render(values_text: str) -> str:
    """values.schema.json's text for a values.yaml text."""
    return json.dumps(generate(values_text), indent=2) + "\n"
