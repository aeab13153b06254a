"""What listens on this machine: the local addresses with a TCP listener on a port (`ss`), for
the tests that check where the cluster is reachable from."""

from __future__ import annotations

import subprocess


def listeners(port: int) -> set[str]:
    """Local addresses with a TCP listener on ``port``."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines()}
