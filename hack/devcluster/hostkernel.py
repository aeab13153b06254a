"""Kernel settings a node changes on the host, recorded before it starts and put back after.

/proc/sys is the host's, whatever runs the kubelet: at start the kubelet sets the tunables
below (its container manager's ``setupKernelTunables``, as ``protectKernelDefaults: false``,
the default, has it do), the CNI bridge plugin turns IPv4 forwarding on, and the node reserves
2 MiB pages for the Gaudi pods. All stay changed after the node stops unless put back; the kind
daemon (hack/kind/daemon.sh) keeps a copy of the kubelet's list for its own nodes, checked
against this one by tests/cluster."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

PROC_SYS = Path("/proc/sys")
# What kubelet v1.36 sets: vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.panic=10,
# kernel.panic_on_oops=1, kernel.keys.root_maxkeys=1000000, kernel.keys.root_maxbytes=25000000.
KUBELET_TUNABLES = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
NR_HUGEPAGES = "vm/nr_hugepages"
# The CNI bridge plugin turns IPv4 forwarding on for a gateway bridge (Docker has it on too).
IP_FORWARD = "net/ipv4/ip_forward"


def read(names: Iterable[str], proc_sys: Path = PROC_SYS) -> dict[str, str]:
    return {name: (proc_sys / name).read_text().strip() for name in names}


def record(path: Path, names: Iterable[str], proc_sys: Path = PROC_SYS) -> dict[str, str]:
    """The host's values of `names`, written to `path` the first time: a node started again
    before it was stopped keeps the values from before its first start."""
    if path.exists():
        return json.loads(path.read_text())
    values = read(names, proc_sys)
    path.write_text(json.dumps(values, indent=1) + "\n")
    return values


def write(values: dict[str, str], proc_sys: Path = PROC_SYS) -> None:
    for name, value in values.items():
        (proc_sys / name).write_text(value)


def restore(path: Path, proc_sys: Path = PROC_SYS) -> None:
    """Write back what `record` kept, then forget it (nothing when nothing was recorded)."""
    if not path.exists():
        return
    write(json.loads(path.read_text()), proc_sys)
    path.unlink()
