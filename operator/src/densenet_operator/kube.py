"""Every call the operator makes to the Kubernetes API, in one place.

Creation is create-if-absent by deterministic name (409 means it is there: leave it), deletion
tolerates 404, status is merge-patched with only the top-level fields that changed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from .job import LABEL_JOB, MANAGER
from .policy import Event, timestamp
from .schema import GROUP, PLURAL, VERSION

NODE_CACHE_SECONDS = 60.0


def owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": job["apiVersion"],
        "kind": job["kind"],
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class Cluster:
    def __init__(self, api_client: kube_client.ApiClient) -> None:
        self.api_client = api_client
        self.core = kube_client.CoreV1Api(api_client)
        self.custom = kube_client.CustomObjectsApi(api_client)
        self._nodes: dict[str, tuple[float, dict[str, str] | None]] = {}
        self._nodes_lock = threading.Lock()

    # --- reads ---------------------------------------------------------------------------
    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def list_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        response = self.core.list_namespaced_pod(
            namespace, label_selector=f"{LABEL_JOB}={job_name}", _preload_content=False
        )
        return json.loads(response.data)["items"]

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response = self.core.read_namespaced_pod(name, namespace, _preload_content=False)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return json.loads(response.data)

    def node_labels(self, name: str) -> dict[str, str] | None:
        """A node's labels (cached for a minute); None when it cannot be read."""
        now = time.monotonic()
        with self._nodes_lock:
            cached = self._nodes.get(name)
            if cached and now - cached[0] < NODE_CACHE_SECONDS:
                return cached[1]
        try:
            labels: dict[str, str] | None = self.core.read_node(name).metadata.labels or {}
        except ApiException:
            labels = None
        with self._nodes_lock:
            self._nodes[name] = (now, labels)
        return labels

    # --- writes --------------------------------------------------------------------------
    def create(self, obj: dict[str, Any], owner: dict[str, Any]) -> bool:
        """Create ``obj`` owned by ``owner``; False when it already exists."""
        obj = {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(owner)]}}
        namespace = obj["metadata"]["namespace"]
        kind = obj["kind"]
        try:
            if kind == "Pod":
                self.core.create_namespaced_pod(namespace, obj)
            elif kind == "Service":
                self.core.create_namespaced_service(namespace, obj)
            elif kind == "ConfigMap":
                self.core.create_namespaced_config_map(namespace, obj)
            else:
                group, version = obj["apiVersion"].split("/")
                plural = kind.lower() + "s"
                self.custom.create_namespaced_custom_object(group, version, namespace, plural, obj)
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def delete_pod(self, namespace: str, name: str, force: bool = False) -> None:
        try:
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=0 if force else None
            )
        except ApiException as err:
            if err.status != 404:
                raise

    def write_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.core.patch_namespaced_config_map(name, namespace, {"data": data})

    def patch_status(self, job: dict[str, Any], new: dict[str, Any]) -> None:
        old = job.get("status") or {}
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        if not changed:
            return
        meta = job["metadata"]
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], {"status": changed}
        )

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
            )
        except ApiException as err:
            if err.status != 404:
                raise

    def post_event(self, job: dict[str, Any], event: Event) -> None:
        """A core/v1 Event on the job, as `kubectl describe dntj` shows them."""
        meta = job["metadata"]
        now = timestamp(datetime.now(UTC))
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": job["apiVersion"],
                "kind": job["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": MANAGER},
            "reportingComponent": MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiException):  # best effort: never fail a reconcile for it
            self.core.create_namespaced_event(meta["namespace"], body)
