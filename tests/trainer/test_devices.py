"""Devices: the Ascend rank-table wait, and a missing vendor package is a clear error."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from trainer_cli import SMALL, error_lines, run

from densenet_trainer.config import RunConfig
from densenet_trainer.devices import ascend, detect
from densenet_trainer.errors import ExitCode, UserError


def _write(path: Path, table: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table))
    tmp.replace(path)  # the controller's ConfigMap update is atomic too


COMPLETED = {
    "status": "completed",
    "group_count": "1",
    "group_list": [
        {
            "group_name": "worker",
            "device_count": "2",
            "instance_count": "1",
            "instance_list": [
                {
                    "pod_name": "p0",
                    "server_id": "10.0.0.1",
                    "devices": [
                        {"device_id": "0", "device_ip": "192.168.100.101"},
                        {"device_id": "1", "device_ip": "192.168.100.102"},
                    ],
                }
            ],
        }
    ],
}


def test_rank_table_wait_returns_once_completed(tmp_path: Path) -> None:
    table = tmp_path / "hccl.json"
    _write(table, {"status": "initializing"})
    flipped = threading.Event()

    def controller() -> None:
        time.sleep(0.5)
        _write(table, COMPLETED)
        flipped.set()

    threading.Thread(target=controller).start()
    got = ascend.wait_for_rank_table(str(table), timeout=30, poll=0.05)
    assert flipped.is_set()
    assert got["status"] == "completed"
    assert got["group_list"][0]["instance_list"][0]["devices"][0]["device_id"] == "0"


def test_rank_table_wait_times_out_with_one_line(tmp_path: Path) -> None:
    table = tmp_path / "hccl.json"
    _write(table, {"status": "initializing"})
    started = time.monotonic()
    with pytest.raises(UserError) as info:
        ascend.wait_for_rank_table(str(table), timeout=0.3, poll=0.05)
    assert time.monotonic() - started < 5
    message = info.value.message
    assert "\n" not in message and str(table) in message and "initializing" in message
    assert "--rank_table_timeout" in message


VERSION_1 = {
    "status": "completed",
    "version": "1.0",
    "server_count": "2",
    "server_list": [
        {"server_id": "10.0.0.2", "device": [{"device_id": "5", "device_ip": "x", "rank_id": "1"}]},
        {"server_id": "10.0.0.1", "device": [{"device_id": "3", "device_ip": "y", "rank_id": "0"}]},
    ],
}


def test_rank_table_devices_in_rank_order_from_either_format() -> None:
    assert ascend.table_devices(COMPLETED, "t") == [("10.0.0.1", "0"), ("10.0.0.1", "1")]
    assert ascend.table_devices(VERSION_1, "t") == [("10.0.0.1", "3"), ("10.0.0.2", "5")]


@pytest.mark.parametrize(
    ("table", "env", "fragment"),
    [
        (VERSION_1, {"RANK_SIZE": "4", "RANK_ID": "0"}, "lists 2 devices but RANK_SIZE=4"),
        (VERSION_1, {"RANK_SIZE": "2", "RANK_ID": "1", "DEVICE_ID": "3"}, "DEVICE_ID=3"),
        (
            {
                "status": "completed",
                "server_list": [{"device": [{"device_id": "0", "rank_id": "0"}]}],
            },
            {"RANK_SIZE": "2"},
            "KeyError: 'server_id'",
        ),
    ],
)
def test_a_table_that_disagrees_with_the_process_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: dict, env: dict, fragment: str
) -> None:
    """Checked before the adapter is imported: HCCL would fail later, less clearly."""
    path = tmp_path / "hccl.json"
    _write(path, table)
    monkeypatch.setenv("RANK_TABLE_FILE", str(path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UserError) as info:
        ascend.create(RunConfig(device="npu", rank_table_timeout=1))
    message = info.value.message
    assert fragment in message and "\n" not in message, message
    assert info.value.exit_code == ExitCode.USAGE and "npu_device" not in message


def test_without_the_adapter_the_error_says_the_table_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hccl.json"
    _write(path, VERSION_1)
    for key, value in {"RANK_TABLE_FILE": str(path), "RANK_SIZE": "2", "RANK_ID": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DEVICE_ID", "5")
    with pytest.raises(UserError) as info:
        ascend.create(RunConfig(device="npu", rank_table_timeout=1))
    assert info.value.exit_code == ExitCode.MISSING_DEVICE
    assert "npu_device" in info.value.message
    assert "rank 1 of 2, device 5 of server 10.0.0.2" in info.value.message


def test_auto_detects_ascend_pod_from_its_environment() -> None:
    assert detect({"RANK_TABLE_FILE": "/user/serverid/devindex/config/hccl.json"}) == "npu"
    assert detect({"HABANA_VISIBLE_DEVICES": "0"}) == "hpu"


@pytest.mark.parametrize(
    ("device", "package"), [("npu", "npu_device"), ("hpu", "habana_frameworks")]
)
def test_missing_vendor_package_names_it_and_never_falls_back(device: str, package: str) -> None:
    result = run(
        "--device",
        device,
        "--synthetic",
        *SMALL,
        "--max_train_steps",
        "1",
        "--log_dir",
        "/nonexistent/never-written",
        timeout=120,
    )
    assert result.returncode == ExitCode.MISSING_DEVICE, result.stderr
    lines = [line for line in error_lines(result.stderr) if "densenet-train" in line]
    assert len(lines) == 1 and package in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "step:" not in result.stdout


def _fake_habana(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for Habana's package: HPUStrategy is TensorFlow's default strategy and one
    HPU is "visible"; what is under test is how the trainer reads TF_CONFIG."""
    import types

    import tensorflow as tf

    package = types.ModuleType("habana_frameworks")
    bridge = types.ModuleType("habana_frameworks.tensorflow")
    bridge.load_habana_module = lambda: None
    distribute = types.ModuleType("habana_frameworks.tensorflow.distribute")
    distribute.HPUStrategy = tf.distribute.get_strategy
    for module in (package, bridge, distribute):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    real = tf.config.list_logical_devices
    monkeypatch.setattr(
        tf.config, "list_logical_devices", lambda kind=None: ["HPU:0"] if kind == "HPU" else real()
    )


@pytest.mark.parametrize(
    ("task", "rank", "chief"),
    [
        ({"type": "chief", "index": 0}, 0, True),
        ({"type": "worker", "index": 0}, 1, False),  # not a second chief
        ({"type": "worker", "index": 1}, 2, False),
    ],
)
def test_gaudi_multi_worker_has_one_chief_when_tf_config_names_one(
    monkeypatch: pytest.MonkeyPatch, task: dict, rank: int, chief: bool
) -> None:
    from densenet_trainer.config import RunConfig
    from densenet_trainer.devices import gaudi

    _fake_habana(monkeypatch)
    cluster = {"chief": ["c:2410"], "worker": ["w0:2410", "w1:2410"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    device = gaudi.create(RunConfig(device="hpu"))
    assert (device.rank, device.is_chief, device.num_workers) == (rank, chief, 3)


def test_ascend_processes_share_the_logged_loss_and_the_stop_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On Ascend the strategy spans one process: the losses and the stop flag of every step
    (and the evaluation counts) are summed over the job with npu_device's all-reduce, so a
    SIGTERM seen by one rank stops all at one step and every rank logs the job's loss."""
    import types

    import tensorflow as tf

    from densenet_trainer.config import RunConfig
    from densenet_trainer.task import across_processes

    calls = []
    other_rank = tf.constant([3.0, 0.5, 3.5, 1.0])  # its loss, and it got the SIGTERM
    distribute = types.ModuleType("npu_device.distribute")
    distribute.all_reduce = lambda values, op: calls.append(op) or [values[0] + other_rank]
    distribute.broadcast = lambda variables, root_rank: None
    npu = types.ModuleType("npu_device")
    npu.open = lambda: types.SimpleNamespace(as_default=lambda: None)
    npu.distribute = distribute
    monkeypatch.setitem(sys.modules, "npu_device", npu)
    monkeypatch.setitem(sys.modules, "npu_device.distribute", distribute)
    table = tmp_path / "hccl.json"
    _write(table, COMPLETED)
    monkeypatch.setenv("RANK_TABLE_FILE", str(table))
    monkeypatch.setenv("RANK_SIZE", "2")
    monkeypatch.setenv("RANK_ID", "0")
    device = ascend.create(RunConfig(device="npu"))
    mine = tf.constant([1.0, 0.5, 1.5, 0.0])
    got = across_processes(mine, device.all_reduce_sum, device.num_workers)
    assert got.numpy().tolist() == [2.0, 0.5, 2.5, 1.0]  # mean losses, summed stop
    assert calls == ["sum"]
