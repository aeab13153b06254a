"""Every call the operator makes to the Kubernetes API, in one place.

Objects stay plain dicts with the API's own field names. The kubernetes package loads the
credentials (kubeconfig or in-cluster, with token refresh), serializes and sends the requests;
the operator skips only its typed API methods, which cost ~4.6 ms of CPU per call in
validation and model conversion against ~0.5 ms this way (measured on this machine), because it
makes several calls per job event.

Creation is create-if-absent by deterministic name: a 409 is ours only when the object there
carries this job's controller ownerReference, anything else is a ForeignObjectError the job reports
and never adopts. Deletion tolerates 404. Status is merge-patched with only the top-level fields
that changed, under a resourceVersion precondition (a stale decision gets 409 and is made
again). Requests the server may not have acted on (429, 5xx, a dropped connection) are retried
a few times with a short backoff. Times compared with the API server's (deletionTimestamp,
creationTimestamp) use the server's clock, learnt from each response's Date header.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as kube_client

from . import kueue
from .job import MANAGER
from .lifecycle import Event, timestamp
from .pods import newest_warning
from .schema import GROUP, PLURAL, VERSION

TIMEOUT = 30.0
MERGE_PATCH = "application/merge-patch+json"
# Retried statuses: throttled, or the server failed before acting (POSTs are safe to repeat:
# creation is by deterministic name and a 409 on the retry is read back as ours).
RETRIED = frozenset({429, 500, 502, 503, 504})
RETRY_DELAYS = (0.2, 1.0, 3.0)


class ApiError(Exception):
    """A refused request: the HTTP status and the API server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ForeignObjectError(ApiError):
    """An object with a child's name exists and is not this job's (no controller reference)."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            409,
            f"{kind} {name} already exists and is not owned by this job; "
            f"delete it or rename the job (the operator never adopts objects)",
        )


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj``'s controller ownerReference is the object with ``uid``."""
    references = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == uid for r in references)


def owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": job["apiVersion"],
        "kind": job["kind"],
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# The resource (plural) of each kind the operator writes; a kind missing here is a KeyError.
RESOURCES = {
    "Pod": "pods",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Event": "events",
    "PodGroup": "podgroups",
    "NetworkPolicy": "networkpolicies",
}


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    """``/api/v1/namespaces/ns/pods`` or ``/apis/group/version/namespaces/ns/plural``."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{quote(namespace)}/{RESOURCES[kind]}"


class Transport:
    """JSON requests through the kubernetes package's ApiClient: its own URL, auth (with an
    expiring in-cluster token refreshed) and body serialization, without the typed layer."""

    def __init__(self, configuration: kube_client.Configuration) -> None:
        self.api_client = kube_client.ApiClient(configuration)
        self.clock_offset = timedelta(0)  # the API server's clock minus ours

    def now(self) -> datetime:
        """The API server's time (to the second), as far as its last response said."""
        return (datetime.now(UTC) + self.clock_offset).replace(microsecond=0)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        for delay in (*RETRY_DELAYS, None):
            try:
                return self._request(method, path, body, params, content_type)
            except ApiError as err:
                if err.status not in RETRIED or delay is None:
                    raise
            except urllib3.exceptions.HTTPError:
                if delay is None:
                    raise
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _request(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, str] | None,
        content_type: str | None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        method, url, headers, body, post = self.api_client.param_serialize(
            method,
            path,
            query_params=list((params or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method,
            url,
            header_params=headers,
            body=body,
            post_params=post,
            _request_timeout=TIMEOUT,
        )
        data = response.read()
        self._learn_clock(response.getheader("Date"))
        if response.status >= 300:
            try:
                message = str(json.loads(data).get("message", ""))
            except (ValueError, AttributeError):
                message = data[:300].decode("utf-8", "replace")
            raise ApiError(response.status, message or response.reason or "")
        return json.loads(data) if data else {}

    def _learn_clock(self, date: str | None) -> None:
        with contextlib.suppress(TypeError, ValueError):
            self.clock_offset = parsedate_to_datetime(date) - datetime.now(UTC)  # type: ignore[arg-type]


class Cluster:
    def __init__(self, transport: Transport, cache_seconds: float) -> None:
        self.api = transport
        # How long a node's labels, a namespace or the admission policy, once read, is reused.
        self.cache_seconds = cache_seconds
        self._nodes: dict[str, tuple[float, dict[str, str] | None]] = {}
        self._nodes_lock = threading.Lock()
        self._objects: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def _job_path(self, namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/{PLURAL}/{quote(name)}"

    # --- reads ---------------------------------------------------------------------------
    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.request("GET", self._job_path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def pod_warning(self, namespace: str, pod: str) -> str:
        """The newest Warning Event on pod ``pod`` ("FailedMount: ..."), or "" when there is
        none. A kubelet says why a pod stays ContainerCreating (a volume it cannot mount, a
        sandbox it cannot create) only in Events, not in the pod's status."""
        selector = f"involvedObject.kind=Pod,involvedObject.name={pod},type=Warning"
        listed = self.api.request(
            "GET", f"/api/v1/namespaces/{quote(namespace)}/events",
            params={"fieldSelector": selector},
        )  # fmt: skip
        return newest_warning(listed.get("items") or [])

    def workload(self, namespace: str, group: str) -> dict[str, Any] | None:
        """Kueue's Workload of pod group ``group`` (named after it); None when Kueue has not
        created it or the operator may not read it (the chart's gangScheduling.kueue grants
        get on workloads): the job then says it is queued without Kueue's reason."""
        try:
            return self.api.request("GET", kueue.workload_path(namespace, quote(group)))
        except ApiError as err:
            if err.status in (403, 404):
                return None
            raise

    def now(self) -> datetime:
        return self.api.now()

    def admission_policy(self, name: str) -> dict[str, Any] | None:
        """The ValidatingAdmissionPolicy ``name`` (the admin's policy for jobs), cached for
        ``cache_seconds``; None when it is not installed."""
        return self._cached(
            f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{quote(name)}"
        )

    def namespace(self, name: str) -> dict[str, Any] | None:
        """Namespace ``name`` (its labels: the policy reads them), cached for
        ``cache_seconds``."""
        return self._cached(f"/api/v1/namespaces/{quote(name)}")

    def _cached(self, path: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._nodes_lock:
            hit = self._objects.get(path)
            if hit and now - hit[0] < self.cache_seconds:
                return hit[1]
        try:
            obj: dict[str, Any] | None = self.api.request("GET", path)
        except ApiError as err:
            if err.status != 404:
                raise
            obj = None
        with self._nodes_lock:
            self._objects[path] = (now, obj)
        return obj

    def node_ready(self, name: str) -> bool | None:
        """Whether node ``name``'s Ready condition is True; None when the node is gone."""
        try:
            node = self.api.request("GET", f"/api/v1/nodes/{quote(name)}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def node_labels(self, name: str) -> dict[str, str] | None:
        """A node's labels (cached for ``cache_seconds``); None when it cannot be read."""
        now = time.monotonic()
        with self._nodes_lock:
            cached = self._nodes.get(name)
            if cached and now - cached[0] < self.cache_seconds:
                return cached[1]
        try:
            node = self.api.request("GET", f"/api/v1/nodes/{quote(name)}")
            labels: dict[str, str] | None = node["metadata"].get("labels") or {}
        except ApiError:
            labels = None
        with self._nodes_lock:
            self._nodes[name] = (now, labels)
        return labels

    # --- writes --------------------------------------------------------------------------
    def create(self, obj: dict[str, Any], owner: dict[str, Any]) -> bool:
        """Create ``obj`` owned by ``owner``; False when it already exists as ``owner``'s,
        ForeignObjectError when something else has its name."""
        obj = {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(owner)]}}
        meta = obj["metadata"]
        path = collection_path(obj["apiVersion"], obj["kind"], meta["namespace"])
        try:
            self.api.request("POST", path, obj)
        except ApiError as err:
            if err.status != 409:
                raise
            try:
                existing = self.api.request("GET", f"{path}/{quote(meta['name'])}")
            except ApiError as missing:
                if missing.status != 404:
                    raise
                return self.create(obj, owner)  # deleted in between: create it now
            if not owned_by(existing, owner["metadata"]["uid"]):
                raise ForeignObjectError(obj["kind"], meta["name"]) from None
            return False
        return True

    def delete_pod(
        self, namespace: str, name: str, force: bool = False, grace: int | None = None
    ) -> None:
        """Delete a pod with its own grace period, ``grace`` seconds, or at once (``force``:
        the object goes before its node has stopped it)."""
        path = f"{collection_path('v1', 'Pod', namespace)}/{quote(name)}"
        seconds = 0 if force else grace
        body = {"gracePeriodSeconds": seconds} if seconds is not None else None
        try:
            self.api.request("DELETE", path, body)
        except ApiError as err:
            if err.status != 404:
                raise

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Merge ``annotations`` into pod ``name``'s (gone: nothing to do)."""
        path = f"{collection_path('v1', 'Pod', namespace)}/{quote(name)}"
        body = {"metadata": {"annotations": annotations}}
        try:
            self.api.request("PATCH", path, body, content_type=MERGE_PATCH)
        except ApiError as err:
            if err.status != 404:
                raise

    def write_config_map(self, owner: dict[str, Any], name: str, data: dict[str, str]) -> None:
        """Set ``data`` in ConfigMap ``name`` of ``owner`` (a job), created again if deleted."""
        namespace = owner["metadata"]["namespace"]
        path = f"{collection_path('v1', 'ConfigMap', namespace)}/{quote(name)}"
        try:
            existing = self.api.request("GET", path)
        except ApiError as err:
            if err.status != 404:
                raise
            meta = {"name": name, "namespace": namespace}
            self.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}, owner
            )
            existing = None
        if existing is None:
            return
        if not owned_by(existing, owner["metadata"]["uid"]):
            raise ForeignObjectError("ConfigMap", name)
        patch = {
            "metadata": {"resourceVersion": existing["metadata"]["resourceVersion"]},
            "data": data,
        }
        self.api.request("PATCH", path, patch, content_type=MERGE_PATCH)

    def patch_status(
        self, job: dict[str, Any], new: dict[str, Any], precondition: bool = True
    ) -> dict[str, Any]:
        """Merge-patch the fields of ``new`` that differ from ``job``'s status; with
        ``precondition``, only if ``job`` is still the stored version (else ApiError 409).
        Returns the job as stored afterwards."""
        old = job.get("status") or {}
        changed: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
        changed.update({k: None for k in old if k not in new})  # merge patch: None removes
        if not changed:
            return job
        meta = job["metadata"]
        path = self._job_path(meta["namespace"], meta["name"]) + "/status"
        patch: dict[str, Any] = {"status": changed}
        if precondition:
            patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        return self.api.request("PATCH", path, patch, content_type=MERGE_PATCH)

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            body = {"propagationPolicy": "Background"}
            self.api.request("DELETE", self._job_path(namespace, name), body)
        except ApiError as err:
            if err.status != 404:
                raise

    def post_event(self, job: dict[str, Any], event: Event) -> None:
        """A core/v1 Event on the job, as `kubectl describe dntj` shows them."""
        meta = job["metadata"]
        now = timestamp(self.now())
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
        with contextlib.suppress(ApiError, OSError):  # best effort: never fail a reconcile
            self.api.request("POST", collection_path("v1", "Event", meta["namespace"]), body)
