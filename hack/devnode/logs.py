"""Where container output goes, and reading it back (`python -m devnode logs NS/POD`).

Layout, like the kubelet's /var/log/pods: <state-dir>/logs/<ns>_<pod>_<uid>/<container>/<n>.log,
n being the container's restart count. Kept until the runner starts again."""

from __future__ import annotations

import sys
from pathlib import Path


class LogsError(Exception):
    pass


def find_log(
    state_dir: Path, namespace: str, pod: str, container: str | None, previous: bool
) -> Path:
    pod_dirs = sorted(
        (state_dir / "logs").glob(f"{namespace}_{pod}_*"), key=lambda p: p.stat().st_mtime
    )
    if not pod_dirs:
        raise LogsError(f"no logs for pod {namespace}/{pod} under {state_dir / 'logs'}")
    pod_dir = pod_dirs[-1]
    containers = sorted(p.name for p in pod_dir.iterdir() if p.is_dir())
    if container is None:
        if len(containers) != 1:
            raise LogsError(f"pod {namespace}/{pod} has containers {containers}: pick one with -c")
        container = containers[0]
    if container not in containers:
        raise LogsError(f"-c {container}: pod {namespace}/{pod} has containers {containers}")
    runs = sorted((pod_dir / container).glob("*.log"), key=lambda p: int(p.stem))
    if previous and len(runs) < 2:
        raise LogsError(f"--previous: container {container} has not restarted")
    return runs[-2] if previous else runs[-1]


def print_log(path: Path) -> None:
    with path.open("rb") as f:
        while chunk := f.read(65536):
            sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
