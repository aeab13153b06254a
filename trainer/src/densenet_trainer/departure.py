"""The coordination service's host leaves last. With MultiWorkerMirroredStrategy the chief
(task 0) runs TensorFlow's coordination service, which every other process heartbeats until
its own exit. A chief that exits first, even right after the last collective, leaves a worker
still shutting down to send its next heartbeat to nobody: it logs `StartAbort UNAVAILABLE
... CoordinationService/Heartbeat` in a run that succeeded. So at the end the chief waits,
bounded, until no other process of the job still listens at its TF_CONFIG address (the
address TensorFlow itself serves on): once a worker's server is gone, so are its heartbeats."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

WAIT_SECONDS = 30.0
POLL_SECONDS = 0.1


def listening(address: str) -> bool:
    """Whether a process accepts TCP connections at ``host:port``."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
            return True
    except OSError:
        return False


def wait_for_exit(
    peers: list[str],
    timeout: float = WAIT_SECONDS,
    probe: Callable[[str], bool] = listening,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Return once none of ``peers`` listens, or after ``timeout``; the ones still there."""
    deadline = clock() + timeout
    pending = [peer for peer in peers if probe(peer)]
    while pending and clock() < deadline:
        sleep(POLL_SECONDS)
        pending = [peer for peer in pending if probe(peer)]
    return pending
