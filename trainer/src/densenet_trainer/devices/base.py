"""What the training code needs to know about the device and the distribution."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ..config import RunConfig
from ..errors import UserError


@dataclasses.dataclass
class DeviceContext:
    kind: str  # cpu | gpu | npu | hpu
    strategy: Any  # tf.distribute.Strategy
    rank: int = 0  # this process among the job's processes
    num_workers: int = 1  # processes in the job
    # Ascend has no tf.distribute strategy: one process per NPU, gradients all-reduced
    # with npu_device's collectives. None elsewhere (the strategy does it).
    all_reduce_gradients: Callable[[list], list] | None = None
    broadcast_variables: Callable[[list], None] | None = None
    # Sum of a small tensor over the job's processes where the strategy does not span them
    # (Ascend): the logged losses, the stop flag and the evaluation counts go through it.
    all_reduce_sum: Callable[[Any], Any] | None = None
    # Called by a process that is done, before it exits: returns the peers it gave up waiting
    # for (departure.py: the coordination service's host leaves last). None: exit at once.
    leave: Callable[[], list[str]] | None = None

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    @property
    def num_replicas(self) -> int:
        if self.all_reduce_gradients is not None:
            return self.num_workers
        return int(self.strategy.num_replicas_in_sync)

    def check_sizes(self, config: RunConfig) -> None:
        if config.rank_size is not None and config.rank_size != self.num_replicas:
            raise UserError(
                f"--rank_size {config.rank_size} does not match the {self.num_replicas} "
                f"device(s) found on {self.kind}; fix --rank_size or the job's devices"
            )
        if config.group_size is not None and config.group_size != self.num_workers:
            raise UserError(
                f"--group_size {config.group_size} does not match the {self.num_workers} "
                "worker process(es) in TF_CONFIG/RANK_SIZE; fix --group_size"
            )
