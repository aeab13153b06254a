"""Start, find and stop the cluster's processes by pid file. A pid counts as ours only while
/proc/<pid>/cmdline still starts with the argv we launched, so a recycled pid is never
signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from devcluster.components import Component


def _pid_file(pid_dir: Path, name: str) -> Path:
    return pid_dir / f"{name}.pid"


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def running_argv(pid_dir: Path, name: str) -> list[str] | None:
    """The command line our process `name` runs with, or None when it is not running."""
    pid = running_pid(pid_dir, name)
    return None if pid is None else _cmdline(pid)


def running_pid(pid_dir: Path, name: str) -> int | None:
    """The pid of our process `name` if it is alive, else None (a stale pid file is removed)."""
    pid_file = _pid_file(pid_dir, name)
    try:
        pid_text, *programs = pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    cmdline = _cmdline(pid)
    # An empty cmdline is a process still inside execve (the kernel fills it in after Popen
    # has already returned): it is ours, not a recycled pid. The programs after the first are
    # a wrapper's, which execs the first.
    if cmdline is None or (cmdline != [""] and cmdline[0] not in programs):
        pid_file.unlink(missing_ok=True)
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except OSError:
        return None
    return pid


def start(component: Component, pid_dir: Path, log_dir: Path) -> int:
    """Launch `component` in its own session, logging to log_dir/<name>.log."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{component.name}.log", "ab") as log:
        proc = subprocess.Popen(
            [*component.wrapper, *component.argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **component.env},
        )
    wrappers = [arg for arg in component.wrapper if arg in component.wrapper_programs]
    programs = "\n".join([component.argv[0], *wrappers])
    _pid_file(pid_dir, component.name).write_text(f"{proc.pid}\n{programs}\n")
    return proc.pid


def stop(pid_dir: Path, name: str, grace_seconds: float = 15.0) -> bool:
    """SIGTERM the process group, SIGKILL after the grace period. True if something ran."""
    pid = running_pid(pid_dir, name)
    if pid is None:
        _pid_file(pid_dir, name).unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    _pid_file(pid_dir, name).unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    # Reap our own child if it has exited, so it does not linger as a zombie.
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    cmdline = _cmdline(pid)
    if cmdline is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def processes_running_from(bin_dir: Path, module_markers: tuple[str, ...] = ()) -> list[int]:
    """Pids of live processes whose executable lies under `bin_dir`, or whose command line
    runs one of `module_markers` (a module run with `python -m`, e.g. "devcluster.apirelay")."""
    bin_root = bin_dir.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            exe = (entry / "exe").resolve()
        except OSError:
            continue
        cmdline = _cmdline(pid) or []
        runs_module = any(
            cmdline[i : i + 2] == ["-m", marker]
            for marker in module_markers
            for i in range(len(cmdline))
        )
        if (exe.is_relative_to(bin_root) or runs_module) and _alive(pid):
            found.append(pid)
    return found
