"""Container processes: each one its own process group (and session), started inside the pod's
network namespace and a fresh mount and UTS namespace, output appended to its log file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from devnode import shim
from devnode.volumes import Mount


def start(
    *,
    netns: str,
    hostname: str,
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    mounts: list[Mount],
    spec_file: Path,
    log_file: Path,
    image_paths: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    spec = {
        "hostname": hostname,
        "mounts": [
            {"source": m.source, "target": m.target, "read_only": m.read_only} for m in mounts
        ],
        # The image's own files (a venv and the sources it runs): a volume mounted over a
        # directory above them (an emptyDir at /tmp) must not hide them, as in a real image.
        "image_paths": list(image_paths),
        "cwd": cwd,
        "argv": argv,
        "env": env,
    }
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec))
    spec_file.chmod(0o600)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    wrapper = [
        "ip", "netns", "exec", netns,
        "unshare", "--mount", "--uts", "--propagation", "private", "--",
        sys.executable, "-I", "-S", shim.__file__, str(spec_file),
    ]  # fmt: skip
    with log_file.open("ab") as out:
        # ip, unshare and the shim each exec the next: the pid is the container's own process.
        return subprocess.Popen(
            wrapper,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
            close_fds=True,
        )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def exit_status(returncode: int) -> tuple[int, int]:
    """(exitCode as Kubernetes reports it, signal number)."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, 0


def trainer_pid(job: str, rank: int) -> int | None:
    """The trainer process of ``rank`` of ``job`` on this machine (found by the environment the
    operator gives it), or None while there is none: for tests and benchmarks that signal it."""
    wanted = {f"DENSENET_JOB_NAME={job}".encode(), f"DENSENET_RANK={rank}".encode()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if wanted <= environ and b"densenet" in cmdline and b"train" in cmdline:
            return int(entry.name)
    return None
