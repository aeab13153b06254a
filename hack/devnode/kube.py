"""The operator's API client (densenet_operator.kube.Transport: auth, retries of 429/5xx,
JSON bodies) with what a kubelet stand-in needs besides: merge patches and a watch stream.
Objects stay plain dicts (the API's own field names), which the pure modules work on."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from kubernetes import client, config

from densenet_operator.kube import MERGE_PATCH, Transport
from densenet_operator.kube import ApiError as KubeError

log = logging.getLogger(__name__)

__all__ = ["Kube", "KubeError", "Store", "key"]


class Kube(Transport):
    def __init__(self, kubeconfig: Path) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 16
        super().__init__(cfg)
        self.cfg = cfg
        self.ca_file = cfg.ssl_ca_cert

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def merge_patch(self, path: str, body: dict) -> dict[str, Any]:
        return self.request("PATCH", path, body, content_type=MERGE_PATCH)

    def watch(self, path: str, resource_version: str, timeout_s: int) -> Iterator[dict]:
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        url = f"{self.cfg.host}{path}?{urlencode(params)}"
        headers = {"Accept": "application/json"}
        self.api_client.update_params_for_auth(headers, [], ["BearerToken"], "", "GET", None)
        resp = self.api_client.rest_client.request(
            "GET", url, headers=headers, _request_timeout=(5, timeout_s + 30)
        )
        if resp.status >= 300:
            raise KubeError(resp.status, resp.read()[:200].decode(errors="replace"))
        raw = resp.response
        buf = b""
        try:
            for chunk in raw.stream(65536, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            raw.release_conn()


def key(obj: dict) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Store(threading.Thread):
    """List-then-watch cache of one collection (an informer without the frills)."""

    def __init__(self, kube: Kube, path: str, on_change: Callable[[], None]) -> None:
        super().__init__(name=f"watch {path}", daemon=True)
        self.kube = kube
        self.path = path
        self.on_change = on_change
        self.synced = threading.Event()
        self._items: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def items(self) -> list[dict]:
        with self._lock:
            return list(self._items.values())

    def get(self, namespace: str, name: str) -> dict | None:
        with self._lock:
            return self._items.get((namespace, name))

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.kube.get(self.path)
                with self._lock:
                    self._items = {key(o): o for o in listing.get("items", [])}
                self.synced.set()
                self.on_change()
                rv = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    for event in self.kube.watch(self.path, rv, timeout_s=240):
                        kind, obj = event["type"], event["object"]
                        if kind == "ERROR":
                            raise KubeError(obj.get("code", 500), obj.get("message", ""))
                        rv = obj["metadata"]["resourceVersion"]
                        if kind == "BOOKMARK":
                            continue
                        with self._lock:
                            if kind == "DELETED":
                                self._items.pop(key(obj), None)
                            else:
                                self._items[key(obj)] = obj
                        self.on_change()
                        if self._stop.is_set():
                            return
            except Exception as exc:  # relist after any failure, as informers do
                if self._stop.is_set():
                    return
                log.debug("watch %s: %s; relisting", self.path, exc)
                time.sleep(1)
