"""Errors a user must fix, and the process exit codes the operator reads.

The operator decides whether to restart a trainer pod from its exit code, so every exit path
of the trainer maps to one :class:`ExitCode`. :class:`UserError` (and :class:`DataError`) are
printed as one line, without a traceback.
"""

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


class UserError(Exception):
    """A problem the user must fix; printed as one line, no traceback."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class DataError(UserError):
    """Missing, empty or corrupt input data (exit code BAD_DATA)."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.BAD_DATA) -> None:
        super().__init__(message, exit_code)
