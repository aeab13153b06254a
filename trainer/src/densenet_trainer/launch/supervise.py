"""Run the children of a :class:`LaunchPlan`: stream their lines, forward signals, stop the
rest when one fails, and pick the exit code."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from .plan import PROG, LaunchPlan, child_command, child_env, exit_status, overall_exit, prefix

POLL_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: the child gets SIGKILL if the launcher dies without stopping it (no orphan keeps
    holding an NPU or a Gaudi card)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Child:
    def __init__(self, plan: LaunchPlan, local_rank: int, environ: Mapping[str, str]) -> None:
        self.local_rank = local_rank
        self.rank = plan.rank_offset + local_rank
        self.prefix = prefix(plan, local_rank)
        self.stopped_by_us = False
        self.status: int | None = None
        self.proc = subprocess.Popen(
            child_command(plan, local_rank),
            env=child_env(environ, plan, local_rank),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C reaches the launcher only, which decides.
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 - started before any thread
        )

    def signal(self, signum: int) -> None:
        if self.status is None and self.proc.poll() is None:
            self.stopped_by_us = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)


class Supervisor:
    def __init__(
        self,
        plan: LaunchPlan,
        environ: Mapping[str, str],
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
    ) -> None:
        self.plan = plan
        self.environ = environ
        self.stdout = stdout or sys.stdout.buffer
        self.stderr = stderr or sys.stderr.buffer
        self._lock = threading.Lock()
        self.children: list[_Child] = []
        self._exited: list[_Child] = []
        self._preempted = False
        self._kill_at: float | None = None

    def say(self, line: str) -> None:
        self._write(self.stderr, f"{PROG}: {line}\n".encode())

    def _write(self, out: IO[bytes], data: bytes) -> None:
        with self._lock:
            out.write(data)
            out.flush()

    def _pump(self, stream: IO[bytes], out: IO[bytes], tag: bytes) -> None:
        for line in iter(stream.readline, b""):
            self._write(out, tag + (line if line.endswith(b"\n") else line + b"\n"))
        stream.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        del frame
        name = signal.Signals(signum).name
        if not self._preempted:
            self.say(f"{name}: asking every process to checkpoint and stop")
        self._preempted = True
        self._kill_at = None  # the kubelet's grace period governs now, not ours
        for child in self.children:
            child.signal(signal.SIGTERM)

    def _start(self) -> list[threading.Thread]:
        for local_rank in range(self.plan.nproc):
            self.children.append(_Child(self.plan, local_rank, self.environ))
        threads = []
        for child in self.children:  # threads only after every fork (preexec_fn)
            for stream, out in ((child.proc.stdout, self.stdout), (child.proc.stderr, self.stderr)):
                thread = threading.Thread(
                    target=self._pump, args=(stream, out, child.prefix), daemon=True
                )
                thread.start()
                threads.append(thread)
        return threads

    def _reap(self) -> None:
        for child in self.children:
            if child.status is not None or child.proc.poll() is None:
                continue
            child.status = exit_status(child.proc.returncode, stopped_by_us=child.stopped_by_us)
            self._exited.append(child)
            failed = child.status != 0 and not child.stopped_by_us
            if failed and not self._preempted and self._kill_at is None:
                live = [c for c in self.children if c.status is None and c.proc.poll() is None]
                stopping = f"; stopping the other {len(live)} process(es)" if live else ""
                self.say(
                    f"rank {child.rank} (local rank {child.local_rank}) exited {child.status}"
                    + stopping
                )
                self._kill_at = time.monotonic() + self.plan.grace_seconds
                for other in live:
                    other.signal(signal.SIGTERM)

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            threads = self._start()
            while any(child.status is None for child in self.children):
                self._reap()
                if self._kill_at is not None and time.monotonic() >= self._kill_at:
                    for child in self.children:
                        if child.status is None and child.proc.poll() is None:
                            self.say(f"rank {child.rank} did not stop in time: SIGKILL")
                            child.signal(signal.SIGKILL)
                    self._kill_at = None
                time.sleep(POLL_SECONDS)
            for thread in threads:
                thread.join(timeout=5)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        code = overall_exit([child.status for child in self._exited if child.status is not None])
        if code != 0:
            statuses = " ".join(f"{c.rank}={c.status}" for c in self.children)
            self.say(f"exit {code} (rank=status: {statuses})")
        return code
