"""Ascend NPU through the TF2 adapter ``npu_device``: one process per NPU.

The rank table (``RANK_TABLE_FILE``) is written by the cluster's hccl-controller: it starts as
``{"status": "initializing"}`` and becomes ``"completed"`` once every pod's devices are known.
HCCL cannot start before that, so we wait for it, with a timeout.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from .. import env
from ..config import RunConfig
from ..errors import ExitCode, UserError
from .base import DeviceContext

POLL_SECONDS = 1.0


def wait_for_rank_table(
    path: str,
    timeout: float,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Return the rank table once its status is ``completed``; UserError after ``timeout``."""
    deadline = clock() + timeout
    status = "missing"
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                table = json.load(f)
            status = str(table.get("status", "absent"))
            if status == "completed":
                return table
        except FileNotFoundError:
            status = "missing"
        except (json.JSONDecodeError, AttributeError):
            status = "unparseable"  # the controller may be mid-write; try again
        if clock() >= deadline:
            raise UserError(
                f"{env.RANK_TABLE_FILE} {path}: status is {status!r}, not 'completed', after "
                f"{timeout:g}s; the hccl-controller has not finished the rank table "
                "(raise --rank_table_timeout or check the controller)",
                ExitCode.CRASH,
            )
        sleep(poll)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise UserError(f"{name}={raw!r} is not an integer") from exc


def table_devices(table: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """(server_id, device_id) of every device in the table, in rank order. Version 1.0 lists
    servers with ranked devices; seed 000's version 0 ranks devices in the order listed."""
    try:
        if "server_list" in table:
            ranked = sorted(
                (int(d["rank_id"]), str(s["server_id"]), str(d["device_id"]))
                for s in table["server_list"]
                for d in s["device"]
            )
            return [(server, device) for _, server, device in ranked]
        return [
            (str(instance["server_id"]), str(d["device_id"]))
            for group in table["group_list"]
            for instance in group["instance_list"]
            for d in instance["devices"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(
            f"{env.RANK_TABLE_FILE} {path}: not a rank table HCCL can read "
            f"({type(exc).__name__}: {exc}); it needs server_list (version 1.0) or group_list "
            "(version 0) with every device's ids"
        ) from exc


def read_own_entry(table_file: str, rank_id: int, rank_size: int, timeout: float) -> str:
    """Wait for the completed table and check that it agrees with this process's RANK_SIZE,
    RANK_ID and DEVICE_ID; returns where this rank sits, for messages."""
    devices = table_devices(wait_for_rank_table(table_file, timeout), table_file)
    if len(devices) != rank_size:
        raise UserError(
            f"{env.RANK_TABLE_FILE} {table_file} lists {len(devices)} devices but "
            f"{env.RANK_SIZE}={rank_size}: the table and the job disagree"
        )
    if not 0 <= rank_id < rank_size:
        raise UserError(f"{env.RANK_ID}={rank_id} is outside 0..{rank_size - 1}")
    server, device = devices[rank_id]
    own_device = os.environ.get(env.DEVICE_ID)
    if own_device is not None and own_device != device:
        raise UserError(
            f"{env.RANK_TABLE_FILE} {table_file} puts rank {rank_id} on device {device} of "
            f"server {server}, but {env.DEVICE_ID}={own_device}"
        )
    return f"rank {rank_id} of {rank_size}, device {device} of server {server}"


def create(config: RunConfig) -> DeviceContext:
    rank_size = _int_env(env.RANK_SIZE, 1)
    rank_id = _int_env(env.RANK_ID, 0)
    table_file = os.environ.get(env.RANK_TABLE_FILE)
    placement = "one process, no rank table"
    if rank_size > 1:
        if not table_file:
            raise UserError(
                f"{env.RANK_SIZE}={rank_size} needs {env.RANK_TABLE_FILE} (the HCCL rank table)"
            )
        # Before the adapter: HCCL cannot start without the completed table, and a table
        # that disagrees with this process is worth its own error wherever it runs.
        placement = read_own_entry(table_file, rank_id, rank_size, config.rank_table_timeout)
    try:
        import npu_device  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError as exc:
        raise UserError(
            "--device npu needs the Python package 'npu_device' (Ascend's TensorFlow adapter, "
            f"in Ascend's TensorFlow images); it cannot be imported here ({placement})",
            ExitCode.MISSING_DEVICE,
        ) from exc
    import tensorflow as tf  # noqa: PLC0415

    os.environ.setdefault(env.ASCEND_DEVICE_ID, os.environ.get(env.DEVICE_ID, "0"))
    npu_device.open().as_default()
    all_reduce = broadcast = reduce_sum = None
    if rank_size > 1:
        from npu_device import distribute as npu_distribute  # noqa: PLC0415

        def all_reduce(grads: list) -> list:
            return npu_distribute.all_reduce(grads, "mean")

        def broadcast(variables: list) -> None:
            npu_distribute.broadcast(variables, root_rank=0)

        def reduce_sum(value: Any) -> Any:
            return npu_distribute.all_reduce([value], "sum")[0]

    return DeviceContext(
        "npu",
        tf.distribute.get_strategy(),
        rank=rank_id,
        num_workers=rank_size,
        all_reduce_gradients=all_reduce,
        broadcast_variables=broadcast,
        all_reduce_sum=reduce_sum,
    )
