"""Pick the accelerator and the tf.distribute strategy: one module per device kind."""

from __future__ import annotations

import importlib.util
import os

from .. import env
from ..config import RunConfig
from .base import DeviceContext

__all__ = ["DeviceContext", "create", "detect"]


def detect(environ: dict[str, str] | None = None) -> str:
    """--device auto: an Ascend or Gaudi pod is recognised by its environment or its vendor
    package, so a pod missing the package fails loudly instead of training on CPU."""
    e = os.environ if environ is None else environ
    if e.get(env.RANK_TABLE_FILE) or importlib.util.find_spec("npu_device") is not None:
        return "npu"
    if e.get(env.HABANA_VISIBLE_DEVICES) or importlib.util.find_spec("habana_frameworks"):
        return "hpu"
    import tensorflow as tf  # noqa: PLC0415 - only when no vendor stack is detected

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def create(config: RunConfig) -> DeviceContext:
    kind = detect() if config.device == "auto" else config.device
    if kind == "npu":
        from . import ascend  # noqa: PLC0415 - vendor modules load only when asked for

        ctx = ascend.create(config)
    elif kind == "hpu":
        from . import gaudi  # noqa: PLC0415 - vendor modules load only when asked for

        ctx = gaudi.create(config)
    else:
        from . import tfdist  # noqa: PLC0415 - vendor modules load only when asked for

        ctx = tfdist.create(kind)
    ctx.check_sizes(config)
    return ctx
