"""Image name -> local environment. Images are never pulled: a rule picks the PATH (a virtual
environment of this repository, or the host's) and extra environment for the container."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devcluster.config import REPO_ROOT

IMAGE_MAP_ENV = "DEVNODE_IMAGE_MAP"


@dataclass(frozen=True)
class ImageRule:
    """First rule whose `pattern` (a regular expression) is found in the image reference wins."""

    pattern: str
    path: tuple[str, ...] = ()  # prepended to the host PATH
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()  # used when the container has no command


def _venv_rule(pattern: str, venv: str) -> ImageRule:
    bin_dir = str(REPO_ROOT / venv / "bin")
    return ImageRule(
        pattern,
        path=(bin_dir,),
        env={"VIRTUAL_ENV": str(REPO_ROOT / venv), "PYTHONUNBUFFERED": "1"},
    )


# The documented table (hack/devnode/README.md). Anything unmatched runs with the host's PATH.
BUILTIN_RULES: tuple[ImageRule, ...] = (
    _venv_rule(r"densenet-trainer.*keras2", ".venv-keras2"),
    _venv_rule(r"densenet-trainer", ".venv"),
    _venv_rule(r"densenet-operator", ".venv"),
)


class ImageMapError(ValueError):
    pass


def load_rules(path: Path | None) -> tuple[ImageRule, ...]:
    """Rules from a JSON/YAML file (`{"rules": [{"pattern", "path", "env", "entrypoint"}]}`),
    tried before the built-in table."""
    if path is None:
        env_path = os.environ.get(IMAGE_MAP_ENV)
        path = Path(env_path) if env_path else None
    if path is None:
        return BUILTIN_RULES
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ImageMapError(f"--image-map {path}: cannot read it ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ImageMapError(f"--image-map {path}: expected a mapping with a 'rules' list")
    rules = []
    for i, raw in enumerate(data["rules"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("pattern"), str):
            raise ImageMapError(f"--image-map {path}: rules[{i}] needs a string 'pattern'")
        try:
            re.compile(raw["pattern"])
        except re.error as exc:
            raise ImageMapError(f"--image-map {path}: rules[{i}].pattern: {exc}") from exc
        rules.append(
            ImageRule(
                raw["pattern"],
                path=tuple(str(p) for p in raw.get("path", [])),
                env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
                entrypoint=tuple(str(a) for a in raw.get("entrypoint", [])),
            )
        )
    return (*rules, *BUILTIN_RULES)


def match(rules: tuple[ImageRule, ...], image: str) -> ImageRule:
    for rule in rules:
        if re.search(rule.pattern, image):
            return rule
    return ImageRule(pattern="")


def path_for(rule: ImageRule, host_path: str) -> str:
    return os.pathsep.join([*rule.path, host_path]) if rule.path else host_path
