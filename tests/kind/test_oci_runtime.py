"""hack/kind/oci_runtime.py, the runtime of kind's own Docker daemon: what it changes in a
container's process before runc runs it, and what it leaves alone (pure: no daemon)."""

from __future__ import annotations

import importlib.util
import json
import resource
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "oci_runtime", REPO / "hack" / "kind" / "oci_runtime.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rt = load()
# This machine's bounding set: every capability up to CHECKPOINT_RESTORE but SYS_RESOURCE.
STATUS = "Name:\tx\nCapBnd:\t000001fffeffffff\n"


def test_the_bounding_set_is_read_by_capability_number():
    allowed = rt.bounding_set(STATUS)
    assert "CAP_SYS_RESOURCE" not in allowed
    assert {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_CHECKPOINT_RESTORE"} <= allowed
    assert len(allowed) == len(rt.CAPS) - 1


def test_a_privileged_process_loses_only_what_the_host_cannot_grant():
    every = [f"CAP_{name}" for name in rt.CAPS]
    process = {"capabilities": {kind: list(every) for kind in ("bounding", "effective")}}
    changed = rt.fit_process(process, rt.bounding_set(STATUS))
    assert changed == ["bounding:CAP_SYS_RESOURCE", "effective:CAP_SYS_RESOURCE"]
    assert process["capabilities"]["bounding"] == [c for c in every if c != "CAP_SYS_RESOURCE"]


def test_rlimits_above_the_hard_limit_come_down_to_it_and_others_stay():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    process = {
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 2**40, "soft": 2**40},
            {"type": "RLIMIT_NOFILE", "hard": 64, "soft": 32},
        ]
    }
    rt.fit_process(process, rt.bounding_set(STATUS))
    if hard != resource.RLIM_INFINITY:
        assert process["rlimits"][0] == {"type": "RLIMIT_NOFILE", "hard": hard, "soft": hard}
    assert process["rlimits"][1] == {"type": "RLIMIT_NOFILE", "hard": 64, "soft": 32}


def test_create_and_exec_are_found_after_runcs_global_options():
    shim = ["--root", "/run/x", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup"]
    args = [*shim, "create", "--bundle", "/b", "--pid-file", "/p", "id"]
    at = rt.subcommand(args)
    assert args[at] == "create"
    assert rt.option(args[at + 1 :], "--bundle", "-b") == "/b"
    assert rt.option(["exec", "--process=/tmp/p.json", "id"], "--process", "-p") == "/tmp/p.json"
    assert rt.subcommand(["--version"]) is None


def test_a_bundles_config_is_rewritten_only_when_something_changes(tmp_path, monkeypatch):
    here = rt.bounding_set(STATUS)
    monkeypatch.setattr(rt, "bounding_set", lambda: here)
    config = tmp_path / "config.json"
    plain = {"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}}}
    config.write_text(json.dumps(plain))
    before = config.stat().st_mtime_ns
    assert rt.rewrite(config, "spec") == []
    assert config.stat().st_mtime_ns == before
    config.write_text(json.dumps({"process": {"capabilities": {"bounding": ["CAP_SYS_RESOURCE"]}}}))
    assert rt.rewrite(config, "spec") == ["bounding:CAP_SYS_RESOURCE"]
    assert json.loads(config.read_text())["process"]["capabilities"]["bounding"] == []
