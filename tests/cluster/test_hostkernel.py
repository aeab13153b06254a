"""The host's kernel settings a node changes are put back as they were (hack/devcluster/
hostkernel.py), on a stand-in for /proc/sys; tests/images/test_real_node.py checks the real
one around a real kubelet."""

from __future__ import annotations

import re
from pathlib import Path

from devcluster import hostkernel

KIND_DAEMON = Path(__file__).parents[2] / "hack" / "kind" / "daemon.sh"


def proc_sys(tmp_path: Path, values: dict[str, str]) -> Path:
    root = tmp_path / "sys"
    for name, value in values.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{value}\n")
    return root


def test_what_was_recorded_before_the_first_start_is_written_back(tmp_path):
    host = {"vm/overcommit_memory": "0", "kernel/panic": "1", "vm/nr_hugepages": "0"}
    root = proc_sys(tmp_path, host)
    kept = tmp_path / "host-kernel.json"
    assert hostkernel.record(kept, host, root) == host
    # The kubelet sets its values; a second start of the node records nothing new.
    kubelet = {"vm/overcommit_memory": "1", "kernel/panic": "10", "vm/nr_hugepages": "256"}
    proc_sys(tmp_path, kubelet)
    assert hostkernel.record(kept, host, root) == host
    hostkernel.restore(kept, root)
    assert hostkernel.read(host, root) == host
    assert not kept.exists()
    hostkernel.restore(kept, root)  # a second teardown changes nothing
    assert hostkernel.read(host, root) == host


def test_the_kind_daemon_puts_back_the_same_tunables():
    listed = re.search(r"^tunables=\(([^)]*)\)", KIND_DAEMON.read_text(), re.M)
    assert listed, f"no tunables=(...) in {KIND_DAEMON}"
    assert tuple(listed[1].split()) == hostkernel.KUBELET_TUNABLES
