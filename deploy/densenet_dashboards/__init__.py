"""Grafana dashboards for DenseNet training, built with grafana-foundation-sdk.

`make dashboards` writes them into the Helm chart (deploy/helm/densenet-operator/files/
dashboards/); the JSON there is generated, never edited. `panel_queries` lists every panel's
PromQL and `expand` turns a query into plain PromQL, so tests can run each one against a real
Prometheus.
"""

from densenet_dashboards.generate import CHART_DASHBOARD_DIR, render_all
from densenet_dashboards.queries import PanelQuery, expand, panel_queries

__all__ = ["CHART_DASHBOARD_DIR", "PanelQuery", "expand", "panel_queries", "render_all"]
