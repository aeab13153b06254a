"""The PromQL of a dashboard's panels, and its Grafana variables replaced by plain values."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# What a query's Grafana variables stand for when it runs outside Grafana: every namespace and
# job, and a rate window of four 15 s scrapes (Grafana's $__rate_interval at the PodMonitor's
# default interval).
DEFAULT_VARIABLES: Mapping[str, str] = {
    "namespace": ".*",
    "job": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel, as Grafana sends it (variables unexpanded)."""

    panel: str
    ref_id: str
    expr: str


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # Collapsed rows keep their panels inside the row.
        yield from _panels(panel.get("panels") or [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every Prometheus query of every panel of a dashboard's JSON model, in panel order."""
    return [
        PanelQuery(panel["title"], target.get("refId", ""), target["expr"])
        for panel in _panels(dashboard.get("panels") or [])
        for target in panel.get("targets") or []
        if "expr" in target
    ]


def expand(expr: str, variables: Mapping[str, str] = DEFAULT_VARIABLES) -> str:
    """`expr` with `$name` and `${name}` replaced from `variables`; an unknown one is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)
