"""Habana Gaudi: ``load_habana_module`` registers the HPU device; HPUStrategy across cards."""

from __future__ import annotations

from .. import env
from ..config import RunConfig
from ..errors import ExitCode, UserError
from .base import DeviceContext


def create(config: RunConfig) -> DeviceContext:
    del config
    try:
        from habana_frameworks.tensorflow import (  # noqa: PLC0415
            load_habana_module,
        )
    except ImportError as exc:
        raise UserError(
            "--device hpu needs the Python package 'habana_frameworks' (Habana's TensorFlow "
            "integration, in Habana's TensorFlow images); it cannot be imported here",
            ExitCode.MISSING_DEVICE,
        ) from exc
    import tensorflow as tf  # noqa: PLC0415

    load_habana_module()
    if not tf.config.list_logical_devices("HPU"):
        raise UserError(
            "--device hpu: habana_frameworks loaded but no HPU is visible (check the "
            "habana.ai/gaudi limit and the device plugin)",
            ExitCode.MISSING_DEVICE,
        )
    workers = env.tf_config_workers()
    if workers > 1:
        from habana_frameworks.tensorflow.distribute import (  # noqa: PLC0415
            HPUStrategy,
        )

        # A chief in TF_CONFIG is rank 0 and worker i is i + 1: one chief writes checkpoints.
        return DeviceContext("hpu", HPUStrategy(), rank=env.tf_config_rank(), num_workers=workers)
    return DeviceContext("hpu", tf.distribute.OneDeviceStrategy("/device:HPU:0"))
