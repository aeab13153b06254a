"""Errors a user must fix, and the process exit codes the operator reads.

The operator decides whether to restart a trainer pod from its exit code, so every exit path
of the trainer maps to one :class:`ExitCode` (defined in densenet_contract, which the operator
imports too). :class:`UserError` (and :class:`DataError`) are printed as one line, without a
traceback.
"""

from __future__ import annotations

from densenet_contract.exitcodes import ExitCode

__all__ = ["DataError", "ExitCode", "UserError"]


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
