"""``densenet-train``: parse flags, run, and map every outcome to an exit code.

Errors the user can fix are printed as one line (``densenet-train: error: ...``) without a
traceback; the exit code tells the operator whether a restart can help (see errors.py).
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from densenet_contract import trainer_cli

from . import env
from .errors import ExitCode, UserError
from .preemption import PreemptedBeforeTrainingError, install_early_handler

PROG = trainer_cli.TRAIN


def _fail(error: UserError) -> int:
    print(f"{PROG}: error: {error.message}", file=sys.stderr, flush=True)
    return int(error.exit_code)


def _driver() -> Callable[[Any], int]:
    """The training driver, which imports TensorFlow: called after TF_CPP_MIN_LOG_LEVEL is set.
    An image without TensorFlow is a broken image, not a crash a restart could fix."""
    try:
        from .driver import run  # noqa: PLC0415 - TensorFlow loads here
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
        raise UserError(
            "no TensorFlow in this Python environment: use the densenet-trainer image, or build "
            "it on a TensorFlow base (vendor images: --build-arg VENV_ARGS=--system-site-packages"
            " so the venv sees the base's TensorFlow; see images/README.md)",
            ExitCode.MISSING_DEVICE,
        ) from None
    return run


def main(argv: Sequence[str] | None = None) -> int:
    from . import flags  # noqa: PLC0415 - parsing must not pay for importing TensorFlow

    try:
        config = flags.parse(argv)
    except UserError as error:
        return _fail(error)
    install_early_handler()
    # Before TensorFlow loads: its C++ start-up chatter would bury our log lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tf.data warns about graph-mode options on every distributed evaluation.
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")
    try:
        # Before TensorFlow reads it: TF_CONFIG from the operator's cluster file, if any.
        env.export_tf_config()
        run = _driver()
        return int(run(config))
    except UserError as error:
        return _fail(error)
    except PreemptedBeforeTrainingError:
        print(f"{PROG}: preempted (SIGTERM) before training started", file=sys.stderr)
        return int(ExitCode.PREEMPTED)
    except KeyboardInterrupt:
        return 130
    except Exception:  # unexpected: keep the traceback for the bug report
        traceback.print_exc()
        return int(ExitCode.CRASH)
