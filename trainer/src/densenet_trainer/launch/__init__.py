"""``densenet-launch``: one trainer process per local NPU or Gaudi card (see plan.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import ExitCode, UserError
from .plan import PROG, parse

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        plan = parse(sys.argv[1:] if argv is None else argv, os.environ)
    except UserError as error:
        print(f"{PROG}: error: {error.message}", file=sys.stderr, flush=True)
        return int(ExitCode.USAGE)
    from .supervise import Supervisor  # noqa: PLC0415 - --help and errors stay cheap

    try:
        return Supervisor(plan, os.environ).run()
    except UserError as error:  # a child's metrics port past 65535
        print(f"{PROG}: error: {error.message}", file=sys.stderr, flush=True)
        return int(ExitCode.USAGE)
    except OSError as error:  # the command cannot be started
        print(f"{PROG}: error: cannot start {plan.command[0]!r}: {error}", file=sys.stderr)
        return int(ExitCode.USAGE)
