"""The trainer's process exit codes: the trainer exits with them, the operator decides from them
whether a restart can help."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes; the operator reads them to decide whether to retry."""

    OK = 0
    CRASH = 1  # unexpected error: retry may help
    USAGE = 2  # bad/conflicting flags: retry never helps
    BAD_DATA = 3  # missing/empty data dir, corrupt JPEG/TFRecord, label out of range
    DIVERGED = 4  # NaN/inf loss
    MISSING_DEVICE = 5  # vendor package or device missing (npu_device, habana_frameworks, no GPU)
    PREEMPTED = 75  # EX_TEMPFAIL: checkpoint written on SIGTERM, resume me


# A few words on each, for help texts and messages.
MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.CRASH: "crash",
    ExitCode.USAGE: "bad flags",
    ExitCode.BAD_DATA: "bad data",
    ExitCode.DIVERGED: "loss diverged (NaN/inf)",
    ExitCode.MISSING_DEVICE: "device or vendor package missing",
    ExitCode.PREEMPTED: "preempted (checkpoint written, restart to resume)",
}
