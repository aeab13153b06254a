"""When the reconciler runs for a job: one run per job at a time with triggers coalesced, and
per-job timers for what falls due later (a backoff, a deadline, a TTL, a retry after an error).

kopf's timers and daemons were the first choice and are not used: kopf puts a finalizer on every
object that has one (``requires_finalizer=True`` for both in kopf 1.45's ``on.py``), so with the
operator down no job could be deleted, and the chart would need ``patch`` on every job for it.
kopf's ``TemporaryError(delay=...)`` retries only change handlers, which keep their progress in
the object (a write per step); this operator is level-based on event handlers, which kopf does
not retry. ``PermanentError`` is the same machinery's other half (stop retrying a change
handler) and has nothing to stop here: a spec that cannot run never reaches the operator (the
CRD's schema and CEL rules, then the admin's admission policy refuse it at ``kubectl apply``),
and one that can no longer run (a policy installed after it, a device that is missing) ends
``Failed`` with its reason through the state machine (lifecycle.py), as every other end does.
A job's timer here is one ``threading.Timer`` that exists only while something is
due, and the resync (reconcile.py) bounds any wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class Coalescer:
    """At most one run per key at a time; triggers during a run cause exactly one more run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[Hashable, bool] = {}  # key -> triggered again while running

    def run(self, key: Hashable, work: Callable[[], None]) -> None:
        with self._lock:
            if key in self._state:
                self._state[key] = True
                return
            self._state[key] = False
        try:
            while True:
                work()
                with self._lock:
                    if not self._state[key]:
                        return
                    self._state[key] = False
        finally:
            with self._lock:
                self._state.pop(key, None)


class Timers:
    """At most one pending timer per key: scheduling again replaces it."""

    def __init__(self, fire: Callable[[Hashable], None]) -> None:
        self._fire = fire
        self._lock = threading.Lock()
        self._timers: dict[Hashable, threading.Timer] = {}

    def schedule(self, key: Hashable, seconds: float) -> None:
        timer = threading.Timer(seconds, self._fired, args=(key,))
        timer.daemon = True
        with self._lock:
            old = self._timers.pop(key, None)
            if old:
                old.cancel()
            self._timers[key] = timer
        timer.start()

    def _fired(self, key: Hashable) -> None:
        with self._lock:
            if self._timers.get(key) is threading.current_thread():
                del self._timers[key]
        self._fire(key)

    def cancel(self, key: Hashable) -> None:
        with self._lock:
            timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()

    def cancel_all(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
