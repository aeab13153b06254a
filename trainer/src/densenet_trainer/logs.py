"""The seed's log line, printed to stdout and appended to --log_dir/--log_name."""

from __future__ import annotations

import os
import sys
from typing import TextIO


def train_line(
    *, step: int, epoch: float, fps: float, loss: float, reg: float, total: float, lr: float
) -> str:
    """Seed 000's line, byte for byte: right-aligned step, epoch and FPS, two spaces between
    fields, no space after the loss fields' colons, 7 decimals on reg_loss, fixed-point lr:
    ``step:   500  epoch:  3.0  FPS:  148.4  loss:0.106533  reg_loss:0.3788784  ...``."""
    return (
        f"step:{step:6d}  epoch:{epoch:5.1f}  FPS:{fps:7.1f}  loss:{loss:.6f}  "
        f"reg_loss:{reg:.7f}  total_loss:{total:.6f}  lr:{lr:.5f}"
    )


def eval_line(step: int, top1: float, top5: float, examples: int) -> str:
    return f"eval: step: {step} top1: {top1:.4f} top5: {top5:.4f} examples: {examples}"


class RunLog:
    """Chief writes the file; every rank prints to stdout (kubectl logs of its own pod)."""

    def __init__(self, log_dir: str, log_name: str, write_file: bool) -> None:
        self._file: TextIO | None = None
        if write_file:
            os.makedirs(log_dir, exist_ok=True)
            self._file = open(os.path.join(log_dir, log_name), "a", encoding="utf-8")  # noqa: SIM115

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def started_line(rank: int, processes: int, kind: str, tensorflow: str) -> str:
    return f"started: rank {rank} of {processes} on {kind}, TensorFlow {tensorflow}"


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
