"""kopf wiring: watches on jobs and their pods trigger the reconciler; nothing else here.

kopf gives the watch streams (the pod stream selected on the server by the managed-by label, so
the operator never streams other pods of the cluster), an index of those pods by job (the
reconciler reads it instead of listing pods), login (kubeconfig or in-cluster), namespace
selection and the liveness endpoint. The level-based reconcile (reconcile.py) keeps every piece
of state in the job's status, so handlers store nothing in the objects.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .job import LABEL_JOB, LABEL_MANAGED_BY, MANAGER
from .pods import indexed
from .reconcile import Reconciler
from .schema import GROUP, PLURAL, VERSION

# Handler threads: reconciles are mostly waiting for the API server, so many jobs can be
# worked on at once; per job, the reconciler's coalescer keeps it to one at a time.
WORKERS = 32


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base. On every event kopf builds the object's "essence" (a deep copy of it,
    status included, then pruned) and clears its progress fields (another copy), to diff it
    for on.create/on.update/on.resume handlers. This operator registers none of those, only
    on.event handlers and an index, so the copies were made and thrown away: 16 % of the
    operator's CPU while 100 jobs arrive (py-spy; benchmarks/README.md). With no essence
    kopf diffs nothing and skips the progress copy."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


def register(registry: kopf.OperatorRegistry) -> None:
    """Register the handlers on ``registry`` (no registration by import side effects)."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)  # kubeconfig or in-cluster, as kubernetes finds

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.posting.level = logging.WARNING  # our Events are posted by the reconciler
        settings.execution.max_workers = WORKERS
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.watching.server_timeout = 300
        settings.watching.label_selectors["", "v1", "pods"] = f"{LABEL_MANAGED_BY}={MANAGER}"
        memo.reconciler.start()

    @kopf.on.cleanup(registry=registry)
    def stop(memo: kopf.Memo, **_: Any) -> None:
        memo.reconciler.stop()

    @kopf.index(
        "", "v1", "pods", id="pods_by_job", labels={LABEL_MANAGED_BY: MANAGER}, registry=registry
    )
    def pods_by_job(
        namespace: str, labels: dict[str, str], body: kopf.Body, **_: Any
    ) -> dict[tuple[str, str], dict[str, Any]] | None:
        job_name = labels.get(LABEL_JOB)
        return {(namespace, job_name): indexed(body)} if job_name else None

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def job_changed(
        *,
        type: str,
        name: str,
        namespace: str,
        body: kopf.Body,
        memo: kopf.Memo,
        pods_by_job: kopf.Index,
        **_: Any,
    ) -> None:
        reconciler: Reconciler = memo.reconciler
        reconciler.pod_index = pods_by_job
        if type == "DELETED":
            reconciler.forget(namespace, name)
        elif reconciler.job_needs_look(namespace, name, body):
            reconciler.trigger(namespace, name, "job", body)

    @kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: MANAGER}, registry=registry)
    def pod_changed(
        *,
        type: str,
        labels: dict[str, str],
        namespace: str,
        body: kopf.Body,
        memo: kopf.Memo,
        pods_by_job: kopf.Index,
        **_: Any,
    ) -> None:
        memo.reconciler.pod_index = pods_by_job
        job_name = labels.get(LABEL_JOB)
        if job_name and memo.reconciler.pod_needs_look(type, body):
            memo.reconciler.trigger(namespace, job_name, "pod")

    @kopf.on.probe(id="jobs", registry=registry)
    def jobs_known(memo: kopf.Memo, **_: Any) -> int:
        return len(memo.reconciler.phases)
