"""The operator's own settings (``densenet-operator run`` flags), one place for their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from densenet_contract import ports

from . import DEFAULT_TRAINER_IMAGE
from .render import NetworkAccess

# Labels of nodes whose pods must never be dialled: the local cluster's fake (kwok) nodes.
DEFAULT_NO_SCRAPE_NODES = "densenet.dev/fake-node=true"
# The ports are densenet_contract.ports' (the chart's values and the operator image's EXPOSE
# are checked against them).
DEFAULT_LIVENESS = f"http://0.0.0.0:{ports.OPERATOR_HEALTH}{ports.HEALTH_PATH}"
DEFAULT_METRICS_PORT = ports.OPERATOR_METRICS
DEFAULT_LEASE = "densenet-operator"


@dataclass(frozen=True)
class Settings:
    trainer_image: str = DEFAULT_TRAINER_IMAGE
    # label selector (k=v[,k=v]) of nodes whose pods are never scraped
    no_scrape_nodes: str = DEFAULT_NO_SCRAPE_NODES
    # how often the chief's /metrics is read into status.progress
    progress_interval: float = 20.0
    # a pod Pending this long (unschedulable, image pull, ...) gets a PodsNotStarting condition
    pending_timeout: float = 300.0
    # whole-job restart backoff: base * 2^(restarts-1), capped
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    # how often every job is looked at even without events (deadlines, TTL, backoff)
    resync_interval: float = 10.0
    # a pod still terminating this long after its grace period is force-deleted (its node is
    # gone): a restart never waits forever (kubeflow/trainer#2072)
    force_delete_after: float = 60.0
    # the chart's ValidatingAdmissionPolicy, read back and applied to jobs admitted before it
    admission_policy: str = ""
    # how long a node's labels, a namespace's labels or the admission policy, once read, is
    # reused: a change to one reaches running jobs within this (plus a resync)
    cache_seconds: float = 60.0
    # leader election: the Lease holds this long unrenewed (client-go's default)
    lease_duration: float = 15.0
    # a NetworkPolicy per job; its metrics ports open to these namespaces only
    network_policy: bool = False
    metrics_from_namespaces: tuple[str, ...] = ()

    def network_access(self) -> NetworkAccess | None:
        return NetworkAccess(self.metrics_from_namespaces) if self.network_policy else None

    def no_scrape_labels(self) -> dict[str, str]:
        pairs = [p.strip() for p in self.no_scrape_nodes.split(",") if p.strip()]
        labels = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            labels[key.strip()] = value.strip()
        return labels
