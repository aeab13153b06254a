"""A Prometheus configuration that means what the chart's ServiceMonitor and PodMonitor mean,
written by hand (the Prometheus Operator binary is not run here).

`scrape_configs()` turns the rendered monitor objects into `kubernetes_sd_configs` scrape jobs
with the relabelling the Prometheus Operator v0.85 generates for them
(`pkg/prometheus/promcfg.go`: generatePodMonitorConfig, generateServiceMonitorConfig): keep on
the selector's labels and the endpoint's port name, drop finished pods, set `namespace`,
`pod`, `container`, `service`, `job`, `endpoint`, then the endpoint's own relabelings. Only the
fields the chart uses are translated; any other field is refused, so a chart change that this
translation does not cover fails loudly instead of being scraped differently.

Every job also gets two guards for the local cluster, applied first: targets on a node labelled
`densenet.dev/fake-node=true` are dropped (kwok pod IPs lead nowhere), and only addresses in
the real node's pod network or on loopback are kept.
"""

from __future__ import annotations

import re
from typing import Any

from devcluster.config import FAKE_NODE_LABEL, REAL_NODE_POD_CIDR

SUPPORTED_ENDPOINT_KEYS = {"port", "path", "interval", "honorLabels", "relabelings"}
RELABEL_KEYS = {
    "action": "action",
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "replacement": "replacement",
    "regex": "regex",
    "separator": "separator",
}


class UnsupportedMonitorError(ValueError):
    """A monitor uses a field this hand-written translation does not cover."""


def sanitize(label: str) -> str:
    """Kubernetes label name -> the suffix of Prometheus's __meta_kubernetes_*_label_ names."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def address_regex() -> str:
    """`host:port` in the real node's pod network (a /24) or on loopback."""
    network = REAL_NODE_POD_CIDR
    if network.prefixlen != 24:
        raise ValueError(f"the address guard assumes a /24, got {network}")
    prefix = re.escape(str(network.network_address).rsplit(".", 1)[0])
    return rf"({prefix}\.\d+|127\.\d+\.\d+\.\d+):\d+"


def guards() -> list[dict[str, Any]]:
    return [
        {
            "action": "drop",
            "source_labels": [f"__meta_kubernetes_node_label_{sanitize(FAKE_NODE_LABEL)}"],
            "regex": "true",
        },
        {"action": "keep", "source_labels": ["__address__"], "regex": address_regex()},
    ]


def _relabelings(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rule in endpoint.get("relabelings") or []:
        unknown = set(rule) - set(RELABEL_KEYS)
        if unknown:
            raise UnsupportedMonitorError(f"relabeling fields {sorted(unknown)} are not translated")
        out.append({RELABEL_KEYS[k]: v if k != "action" else v.lower() for k, v in rule.items()})
    return out


def _keep_labels(kind: str, match_labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_{kind}_label_{sanitize(k)}",
                f"__meta_kubernetes_{kind}_labelpresent_{sanitize(k)}",
            ],
            "regex": f"({v});true",
        }
        for k, v in sorted(match_labels.items())
    ]


def _check(monitor: dict[str, Any], endpoints_key: str) -> None:
    spec = monitor["spec"]
    unknown = set(spec) - {"selector", "namespaceSelector", "sampleLimit", endpoints_key}
    if unknown or set(spec["selector"]) - {"matchLabels"}:
        raise UnsupportedMonitorError(f"{monitor['kind']} fields not translated: {sorted(unknown)}")
    for endpoint in spec[endpoints_key]:
        if set(endpoint) - SUPPORTED_ENDPOINT_KEYS:
            extra = sorted(set(endpoint) - SUPPORTED_ENDPOINT_KEYS)
            raise UnsupportedMonitorError(
                f"{monitor['kind']} endpoint fields not translated: {extra}"
            )


def _sd(role: str, monitor: dict[str, Any], api: dict[str, Any]) -> dict[str, Any]:
    selector = monitor["spec"].get("namespaceSelector") or {}
    if selector.get("any"):
        namespaces: list[str] = []
    else:
        namespaces = selector.get("matchNames") or [monitor["metadata"]["namespace"]]
    sd = {"role": role, **api, "attach_metadata": {"node": True}}
    if namespaces:
        sd["namespaces"] = {"names": namespaces}
    return sd


def _endpoint_common(endpoint: dict[str, Any]) -> dict[str, Any]:
    common: dict[str, Any] = {"honor_labels": bool(endpoint.get("honorLabels", False))}
    if "interval" in endpoint:
        common["scrape_interval"] = endpoint["interval"]
    if "path" in endpoint:
        common["metrics_path"] = endpoint["path"]
    return common


def pod_monitor_jobs(monitor: dict[str, Any], api: dict[str, Any]) -> list[dict[str, Any]]:
    _check(monitor, "podMetricsEndpoints")
    ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
    jobs = []
    for i, endpoint in enumerate(monitor["spec"]["podMetricsEndpoints"]):
        relabel = [
            *guards(),
            {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
            {
                "action": "drop",
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "(Failed|Succeeded)",
            },
            *_keep_labels("pod", monitor["spec"]["selector"]["matchLabels"]),
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": endpoint["port"],
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "target_label": "container",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"target_label": "job", "replacement": f"{ns}/{name}"},
            {"target_label": "endpoint", "replacement": endpoint["port"]},
            *_relabelings(endpoint),
        ]
        limit = monitor["spec"].get("sampleLimit")
        jobs.append(
            {
                "job_name": f"podMonitor/{ns}/{name}/{i}",
                **_endpoint_common(endpoint),
                # The Prometheus Operator turns spec.sampleLimit into each job's sample_limit.
                **({"sample_limit": limit} if limit is not None else {}),
                "kubernetes_sd_configs": [_sd("pod", monitor, api)],
                "relabel_configs": relabel,
            }
        )
    return jobs


def service_monitor_jobs(monitor: dict[str, Any], api: dict[str, Any]) -> list[dict[str, Any]]:
    """Role `endpointslice` (the Prometheus Operator's `serviceDiscoveryRole: EndpointSlice`):
    Kubernetes deprecated v1 Endpoints in 1.33."""
    _check(monitor, "endpoints")
    ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
    jobs = []
    for i, endpoint in enumerate(monitor["spec"]["endpoints"]):
        target = [
            "__meta_kubernetes_endpointslice_address_target_kind",
            "__meta_kubernetes_endpointslice_address_target_name",
        ]
        relabel = [
            *guards(),
            {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
            *_keep_labels("service", monitor["spec"]["selector"]["matchLabels"]),
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                "regex": endpoint["port"],
            },
            {
                "source_labels": target,
                "separator": ";",
                "regex": "Node;(.*)",
                "replacement": "${1}",
                "target_label": "node",
            },
            {
                "source_labels": target,
                "separator": ";",
                "regex": "Pod;(.*)",
                "replacement": "${1}",
                "target_label": "pod",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "target_label": "container",
            },
            {
                "action": "drop",
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "(Failed|Succeeded)",
            },
            {
                "source_labels": ["__meta_kubernetes_service_name"],
                "target_label": "job",
                "replacement": "${1}",
            },
            {"target_label": "endpoint", "replacement": endpoint["port"]},
            *_relabelings(endpoint),
        ]
        jobs.append(
            {
                "job_name": f"serviceMonitor/{ns}/{name}/{i}",
                **_endpoint_common(endpoint),
                "kubernetes_sd_configs": [_sd("endpointslice", monitor, api)],
                "relabel_configs": relabel,
            }
        )
    return jobs


def scrape_configs(objects: list[dict[str, Any]], api: dict[str, Any]) -> list[dict[str, Any]]:
    """Scrape jobs for every PodMonitor and ServiceMonitor among `objects`; `api` is the
    kubernetes_sd_configs connection (api_server, tls_config, authorization)."""
    jobs: list[dict[str, Any]] = []
    for obj in objects:
        if obj["kind"] == "PodMonitor":
            jobs += pod_monitor_jobs(obj, api)
        elif obj["kind"] == "ServiceMonitor":
            jobs += service_monitor_jobs(obj, api)
    return jobs


def config(
    objects: list[dict[str, Any]], api: dict[str, Any], rule_files: list[str], interval: str
) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": rule_files,
        "scrape_configs": scrape_configs(objects, api),
    }
