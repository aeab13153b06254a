"""CPU and NVIDIA GPU: MirroredStrategy in a pod, MultiWorkerMirroredStrategy across pods."""

from __future__ import annotations

import tensorflow as tf

from .. import departure, env
from ..errors import ExitCode, UserError
from .base import DeviceContext


def create(kind: str) -> DeviceContext:
    workers = env.tf_config_workers()
    if kind == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise UserError(
                "--device gpu: TensorFlow sees no GPU (check the NVIDIA device plugin, "
                "nvidia.com/gpu limits and a CUDA build of TensorFlow)",
                ExitCode.MISSING_DEVICE,
            )
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    if workers > 1:
        rank = env.tf_config_rank()
        implementation = (
            tf.distribute.experimental.CommunicationImplementation.RING
            if kind == "cpu"
            else tf.distribute.experimental.CommunicationImplementation.AUTO
        )
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation
            )
        )
        peers = env.tf_config_peers()
        leave = (lambda: departure.wait_for_exit(peers)) if rank == 0 else None
        return DeviceContext(kind, strategy, rank=rank, num_workers=workers, leave=leave)
    devices = None if kind == "gpu" else ["/cpu:0"]
    return DeviceContext(kind, tf.distribute.MirroredStrategy(devices=devices))
