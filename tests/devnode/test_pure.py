"""The runner's pure parts: what a pod sees (hosts, env, volume files), what the API is told
(status), and how bad input is refused."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from devcluster.config import RUNNER_POD_CIDR, RUNNER_SPARE_POD_CIDR
from devnode import cli
from devnode.envvars import ConfigError, command_line, container_env, expand
from devnode.hosts import render_hosts
from devnode.images import BUILTIN_RULES, ImageMapError, load_rules, match, path_for
from devnode.ipam import IPAllocator
from devnode.status import ContainerRecord, conditions, pod_phase, pod_status, terminated
from devnode.volumes import (
    SA_MOUNT_PATH,
    FileContext,
    container_mounts,
    volume_files,
    with_service_account_volume,
)


def pod(name: str, ip: str | None = None, labels=None, phase="Running", **spec) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns1",
            "uid": f"uid-{name}",
            "labels": labels or {},
        },
        "spec": {"containers": [{"name": "main", "image": "python:3.11"}], **spec},
        "status": {"phase": phase, **({"podIP": ip} if ip else {})},
    }


def headless(name: str, selector: dict) -> dict:
    return {
        "metadata": {"name": name, "namespace": "ns1"},
        "spec": {"clusterIP": "None", "selector": selector},
    }


class TestHosts:
    def test_headless_service_and_pod_names_resolve_to_runner_pods_only(self):
        me = pod("w-0", "10.89.0.5", {"job": "a"}, hostname="w-0", subdomain="svc")
        peer = pod("w-1", "10.89.0.6", {"job": "a"}, hostname="w-1", subdomain="svc")
        fake = pod("w-2", "10.90.0.7", {"job": "a"}, hostname="w-2", subdomain="svc")  # kwok pod
        done = pod("w-3", "10.89.0.8", {"job": "a"}, phase="Succeeded")
        text = render_hosts(
            me,
            "10.89.0.5",
            [me, peer, fake, done],
            [headless("svc", {"job": "a"})],
            RUNNER_POD_CIDR,
        )
        lines = text.splitlines()
        assert "10.89.0.5\tw-0.svc.ns1.svc.cluster.local w-0.svc.ns1.svc w-0.svc.ns1 w-0" in lines
        peer_line = next(line for line in lines if line.startswith("10.89.0.6") and "w-1." in line)
        for name in ("w-1.svc.ns1.svc", "w-1.svc.ns1.svc.cluster.local", "w-1.svc"):
            assert name in peer_line.split()
        svc_lines = [line for line in lines if "svc.ns1.svc" in line.split()]
        assert {line.split()[0] for line in svc_lines} == {"10.89.0.5", "10.89.0.6"}
        assert "10.90.0.7" not in text and "10.89.0.8" not in text

    def test_cluster_ip_services_and_unselected_pods_are_left_out(self):
        me = pod("a", "10.89.0.5", {"app": "x"})
        svc = {
            "metadata": {"name": "web", "namespace": "ns1"},
            "spec": {"clusterIP": "10.96.0.9", "selector": {"app": "x"}},
        }
        other = headless("db", {"app": "db"})
        text = render_hosts(me, "10.89.0.5", [me], [svc, other], RUNNER_POD_CIDR)
        assert "web" not in text and "db" not in text
        assert "10.89.0.5\ta" in text.splitlines()


def _lookup(objs):
    return lambda ns, name: objs.get(name)


class TestEnv:
    def test_env_from_field_refs_config_maps_and_expansion(self):
        p = pod("w-0")
        c = {
            "name": "main",
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                {"name": "ADDR", "value": "$(POD_IP):2222 $$(POD_IP) $(NOPE)"},
                {
                    "name": "MEM",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}
                    },
                },
            ],
            "resources": {"limits": {"memory": "512Mi"}},
        }
        env = container_env(
            p, c, base={"PATH": "/bin"}, pod_ip="10.89.0.5", host_ip="10.89.0.1",
            node_allocatable={"cpu": "2", "memory": "1Gi"},
            configmaps=_lookup({"cfg": {"mode": b"fast"}}),
            secrets=_lookup({"s": {"pw": b"hunter2"}}),
        )  # fmt: skip
        assert env["POD_NAME"] == "w-0" and env["POD_IP"] == "10.89.0.5"
        assert env["NODE_IP"] == "10.89.0.1" and env["PASS"] == "hunter2"
        assert env["CFG_mode"] == "fast" and env["MEM"] == "512"
        assert env["ADDR"] == "10.89.0.5:2222 $(POD_IP) $(NOPE)"
        assert command_line({"name": "m", "command": ["echo", "$(POD_NAME)"]}, env, ()) == [
            "echo",
            "w-0",
        ]

    def test_missing_config_map_blocks_the_container_unless_optional(self):
        c = {
            "name": "main",
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}],
        }
        kwargs = dict(
            base={},
            pod_ip="",
            host_ip="",
            node_allocatable={},
            configmaps=_lookup({}),
            secrets=_lookup({}),
        )
        with pytest.raises(ConfigError, match="gone"):
            container_env(pod("a"), c, **kwargs)
        c["env"][0]["valueFrom"]["configMapKeyRef"]["optional"] = True
        assert "X" not in container_env(pod("a"), c, **kwargs)

    def test_no_command_and_no_entrypoint_is_an_error(self):
        with pytest.raises(ConfigError, match="no command"):
            command_line({"name": "m"}, {}, ())
        assert expand("$(A)-$(B)", {"A": "1"}) == "1-$(B)"


class TestVolumes:
    def ctx(self, p, configmaps=None, secrets=None):
        return FileContext(
            pod=p, pod_ip="10.89.0.5", host_ip="10.89.0.1", node_allocatable={},
            configmaps=_lookup(configmaps or {}), secrets=_lookup(secrets or {}),
            token=lambda aud, secs: f"token-{aud}-{secs}".encode(),
        )  # fmt: skip

    def test_config_map_items_secret_and_downward_files(self):
        p = pod("w-0")
        cm = {
            "name": "c",
            "configMap": {"name": "cfg", "items": [{"key": "a", "path": "sub/a.txt"}]},
        }
        sec = {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}}
        dw = {
            "name": "d",
            "downwardAPI": {
                "items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]
            },
        }
        c = self.ctx(p, {"cfg": {"a": b"1", "b": b"2"}}, {"sec": {"pw": b"x"}})
        assert volume_files(cm, c) == {"sub/a.txt": (b"1", 0o644)}
        assert volume_files(sec, c) == {"pw": (b"x", 0o400)}
        assert volume_files(dw, c) == {"name": (b"w-0", 0o644)}
        with pytest.raises(ConfigError, match="must be relative"):
            volume_files(
                {
                    "name": "e",
                    "configMap": {"name": "cfg", "items": [{"key": "a", "path": "../x"}]},
                },
                c,
            )

    def test_service_account_volume_is_added_unless_automount_is_off(self):
        p = with_service_account_volume(pod("w-0", serviceAccountName="op"))
        vol = next(v for v in p["spec"]["volumes"] if "projected" in v)
        files = volume_files(vol, self.ctx(p, {"kube-root-ca.crt": {"ca.crt": b"PEM"}}))
        assert files["token"][0] == b"token-None-3607"
        assert files["ca.crt"][0] == b"PEM" and files["namespace"][0] == b"ns1"
        assert p["spec"]["containers"][0]["volumeMounts"][-1]["mountPath"] == SA_MOUNT_PATH
        off = pod("w-1", automountServiceAccountToken=False)
        assert with_service_account_volume(off) is off

    def test_mounts_are_read_only_for_file_volumes_and_follow_sub_paths(self):
        c = {"name": "m", "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/app/"},
            {"name": "data", "mountPath": "/data/x", "subPathExpr": "$(POD)"},
        ]}  # fmt: skip
        mounts = container_mounts(c, {"cfg": "/s/cfg", "data": "/s/data"}, {"cfg"}, {"POD": "w-0"})
        assert [(m.source, m.target, m.read_only) for m in mounts] == [
            ("/s/cfg", "/etc/app", True),
            ("/s/data/w-0", "/data/x", False),
        ]
        with pytest.raises(ConfigError, match="not supported"):
            volume_files({"name": "p", "nfs": {"server": "x", "path": "/"}}, self.ctx(pod("a")))


class TestStatus:
    def test_phase_rules_follow_restart_policy(self):
        ok = terminated(0, "t0", "t1")
        bad = terminated(3, "t0", "t1")
        assert bad["reason"] == "Error" and ok["reason"] == "Completed"
        assert (
            pod_phase("Never", False, False, [ContainerRecord("m", "i", terminated=bad)])
            == "Failed"
        )
        assert (
            pod_phase("OnFailure", False, False, [ContainerRecord("m", "i", terminated=ok)])
            == "Succeeded"
        )
        backoff = ContainerRecord(
            "m", "i", restart_count=1, last_terminated=bad, waiting_reason="CrashLoopBackOff"
        )
        assert pod_phase("OnFailure", False, False, [backoff]) == "Running"
        assert (
            pod_phase("Always", False, False, [ContainerRecord("m", "i", terminated=ok)])
            == "Running"
        )
        assert pod_phase("Always", True, False, [ContainerRecord("m", "i")]) == "Pending"
        assert pod_phase("Never", False, True, [ContainerRecord("m", "i")]) == "Failed"

    def test_status_carries_ips_states_and_stable_transition_times(self):
        running = ContainerRecord(
            "m",
            "img",
            restart_count=2,
            running_since="t5",
            last_terminated=terminated(1, "t0", "t1"),
        )
        conds = conditions(
            [], "t5", sandbox_ready=True, initialized=True, containers_ready=True, terminal=False
        )
        later = conditions(
            conds, "t9", sandbox_ready=True, initialized=True, containers_ready=True, terminal=False
        )
        assert {c["type"]: c["lastTransitionTime"] for c in later}["Ready"] == "t5"
        s = pod_status(phase="Running", conditions=later, pod_ip="10.89.0.5", host_ip="10.89.0.1",
                       start_time="t0", init_containers=[], containers=[running])  # fmt: skip
        cs = s["containerStatuses"][0]
        assert s["podIPs"] == [{"ip": "10.89.0.5"}] and s["hostIP"] == "10.89.0.1"
        assert (
            cs["state"] == {"running": {"startedAt": "t5"}}
            and cs["ready"]
            and cs["restartCount"] == 2
        )
        assert cs["lastState"]["terminated"]["exitCode"] == 1


class TestConfigAndCli:
    def test_image_rules_pick_the_venv_and_a_file_can_add_rules(self, tmp_path):
        assert ".venv-keras2" in match(BUILTIN_RULES, "registry/densenet-trainer:keras2").path[0]
        assert match(BUILTIN_RULES, "densenet-operator:0.1").path[0].endswith(".venv/bin")
        assert path_for(match(BUILTIN_RULES, "python:3.11"), "/usr/bin") == "/usr/bin"
        f = tmp_path / "map.yaml"
        f.write_text("rules:\n  - pattern: '^busybox'\n    path: [/opt/bb]\n    entrypoint: [sh]\n")
        rules = load_rules(f)
        assert match(rules, "busybox:1").entrypoint == ("sh",)
        f.write_text("rules: [{pattern: '('}]\n")
        with pytest.raises(ImageMapError, match=r"rules\[0\]"):
            load_rules(f)

    def test_pod_ips_skip_the_gateway_and_the_spare_range(self):
        alloc = IPAllocator(
            RUNNER_POD_CIDR, ipaddress.ip_address("10.89.0.1"), [RUNNER_SPARE_POD_CIDR]
        )
        ips = [alloc.allocate(f"u{i}") for i in range(189)]
        assert ips[0] == "10.89.0.2" and len(set(ips)) == 189
        assert all(ipaddress.ip_address(ip) not in RUNNER_SPARE_POD_CIDR for ip in ips)

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--node-name", "Node_1"], "--node-name"),
            (["--bridge", "averylongname"], "--bridge"),
            (["--pod-cidr", "10.89.0.0/33"], "--pod-cidr"),
            (["--taint", "a=b"], "--taint"),
            (["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
        ],
    )
    def test_bad_flags_get_one_clear_line(self, argv, message, capsys, tmp_path):
        code = cli.main(["run", "--state-dir", str(tmp_path), *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0] and "Traceback" not in err[0]

    def test_logs_reader_names_the_missing_pod(self, capsys, tmp_path):
        log = tmp_path / "logs" / "ns1_w-0_uid" / "main"
        log.mkdir(parents=True)
        (log / "0.log").write_text("first\n")
        (log / "1.log").write_text("second\n")
        assert cli.main(["logs", "ns1/w-0", "--state-dir", str(tmp_path)]) == 0
        assert cli.main(["logs", "ns1/w-0", "-p", "--state-dir", str(tmp_path)]) == 0
        assert capsys.readouterr().out == "second\nfirst\n"
        assert cli.main(["logs", "ns1/nope", "--state-dir", str(tmp_path)]) == 2
        assert "ns1/nope" in capsys.readouterr().err


def test_secret_values_are_decoded():
    from devnode.envvars import secret_data

    assert secret_data({"data": {"k": base64.b64encode(b"v").decode()}}) == {"k": b"v"}


def test_log_tail_keeps_the_last_lines():
    from devnode.logserver import tail

    assert tail(b"a\nb\nc\n", 2) == b"b\nc\n"
    assert tail(b"a\nb\n", None) == b"a\nb\n"
    assert tail(b"a\nb\n", 0) == b""


def test_hosts_file_is_rewritten_in_place_without_truncation(tmp_path):
    from devnode.netns import write_in_place

    hosts = tmp_path / "hosts"
    hosts.write_text("10.89.0.5\ta\n10.89.0.6\tb\n")
    inode = hosts.stat().st_ino
    write_in_place(hosts, "10.89.0.5\ta\n")
    assert hosts.read_text().splitlines() == ["10.89.0.5\ta"] + [""] * 12
    write_in_place(hosts, "10.89.0.5\ta\n10.89.0.7\tc\n")
    assert hosts.read_text() == "10.89.0.5\ta\n10.89.0.7\tc\n"
    assert hosts.stat().st_ino == inode  # the bind mount inside the pod still sees it


def test_probe_ports_by_name_and_tcp_probe_verdicts():
    import socket

    from devnode.probes import resolve_port, run_probe

    container = {"ports": [{"name": "metrics", "containerPort": 9090}]}
    assert resolve_port("metrics", container) == 9090 and resolve_port("8080", container) == 8080
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = {"tcpSocket": {"port": port, "host": "127.0.0.1"}}
        assert run_probe(probe, container, "", 0, {}) is True
    assert run_probe(probe, container, "", 0, {}) is False  # closed now
    assert run_probe({"tcpSocket": {"port": "nope"}}, container, "", 0, {}) is False


def test_probes_dial_only_the_pod_network_or_loopback():
    from devnode.probes import probe_target, run_probe

    assert probe_target(None, "10.89.0.7") == "10.89.0.7"
    assert probe_target("127.0.0.1", "10.89.0.7") == "127.0.0.1"
    for outside in ("10.90.0.5", "192.168.1.1", "8.8.8.8", "example.com"):
        with pytest.raises(ValueError, match="probe host"):
            probe_target(outside, "10.89.0.7")
    # A probe whose host is outside fails without dialling anything.
    probe = {"tcpSocket": {"port": 80, "host": "192.0.2.1"}, "timeoutSeconds": 30}
    assert run_probe(probe, {}, "10.89.0.7", 0, {}) is False


def test_a_bound_claim_mounts_its_host_path_volume_and_an_unbound_one_waits():
    from devnode.volumes import claimed_host_path, kind_of

    assert kind_of({"name": "d", "persistentVolumeClaim": {"claimName": "c"}}) == (
        "persistentVolumeClaim"
    )
    bound = {"spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}}
    pv = {"spec": {"hostPath": {"path": "/var/tmp/d", "type": "Directory"}}}
    assert claimed_host_path("c", bound, pv) == {"path": "/var/tmp/d", "type": "Directory"}
    local = {"spec": {"local": {"path": "/mnt/disk"}}}
    assert claimed_host_path("c", bound, local) == {"path": "/mnt/disk", "type": ""}
    assert claimed_host_path("c", {"spec": {}, "status": {"phase": "Pending"}}, None) is None
    with pytest.raises(ConfigError, match="'c': PersistentVolume 'pv-1' is not a hostPath"):
        claimed_host_path("c", bound, {"spec": {"nfs": {"server": "x", "path": "/"}}})
