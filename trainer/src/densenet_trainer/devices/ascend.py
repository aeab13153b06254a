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


def create(config: RunConfig) -> DeviceContext:
    try:
        import npu_device  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError as exc:
        raise UserError(
            "--device npu needs the Python package 'npu_device' (Ascend's TensorFlow adapter, "
            "in Ascend's TensorFlow images); it cannot be imported here",
            ExitCode.MISSING_DEVICE,
        ) from exc
    import tensorflow as tf  # noqa: PLC0415

    rank_size = _int_env(env.RANK_SIZE, 1)
    rank_id = _int_env(env.RANK_ID, 0)
    table_file = os.environ.get(env.RANK_TABLE_FILE)
    if rank_size > 1:
        if not table_file:
            raise UserError(
                f"{env.RANK_SIZE}={rank_size} needs {env.RANK_TABLE_FILE} (the HCCL rank table)"
            )
        wait_for_rank_table(table_file, config.rank_table_timeout)
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
