"""SIGTERM (eviction, preemption, pod deletion): stop after the step in progress.

Python runs signal handlers only between bytecodes of the main thread, which sits inside a
compiled loop of up to --iterations_per_loop steps. So the handler's wakeup fd is watched by
a thread that flips a TensorFlow variable the loop reads after every step.
"""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any


class PreemptedBeforeTrainingError(Exception):
    """SIGTERM before the training loop started: nothing to save, exit "resume me"."""


def _raise_preempted(signum: int, frame: Any) -> None:
    del signum, frame
    raise PreemptedBeforeTrainingError


def install_early_handler() -> None:
    """Until :class:`PreemptionWatcher` takes over (start-up takes tens of seconds: importing
    TensorFlow, building and tracing the model), SIGTERM ends the process with the same
    "preempted" exit code instead of Python's default death by signal."""
    signal.signal(signal.SIGTERM, _raise_preempted)


class PreemptionWatcher:
    def __init__(self, flag: Any) -> None:
        self._flag = flag
        self.requested = False
        self._reader: socket.socket | None = None

    def install(self) -> None:
        reader, writer = socket.socketpair()
        reader.setblocking(True)
        writer.setblocking(False)
        self._reader = reader
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._writer = writer  # keep the socket (and its fd) alive
        threading.Thread(target=self._watch, name="sigterm-watcher", daemon=True).start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        del signum, frame
        self._request()

    def _request(self) -> None:
        if not self.requested:
            self.requested = True
            self._flag.assign(True)

    def _watch(self) -> None:
        assert self._reader is not None
        while True:
            data = self._reader.recv(64)
            if not data:
                return
            if signal.SIGTERM in data:
                self._request()
