"""What each child of ``densenet-launch`` gets: pure functions, no processes.

The operator starts one pod per node with ``N`` devices and sets ``DENSENET_RANK`` to the
global rank of the pod's first process (pod index x N), plus the job-wide ``RANK_SIZE``,
``RANK_TABLE_FILE`` (Ascend) or TF_CONFIG's cluster file (Gaudi, one worker address per
process; or a whole ``TF_CONFIG``).
Child ``j`` of ``N`` becomes global rank ``K + j`` with the environment and flags below.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import NoReturn

from densenet_contract import trainer_cli

from .. import env
from ..config import DEFAULT_METRICS_PORT
from ..errors import ExitCode, UserError

PROG = trainer_cli.LAUNCH
METRICS_FLAG = trainer_cli.METRICS_PORT
DEFAULT_GRACE_SECONDS = 20.0
# Exit codes that name a cause a restart cannot fix: they win over everything else.
_TELLING = frozenset(
    {ExitCode.USAGE, ExitCode.BAD_DATA, ExitCode.DIVERGED, ExitCode.MISSING_DEVICE}
)


@dataclasses.dataclass(frozen=True)
class LaunchPlan:
    nproc: int
    rank_offset: int
    command: tuple[str, ...]
    grace_seconds: float = DEFAULT_GRACE_SECONDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        allow_abbrev=False,
        usage=f"{PROG} --nproc N [--rank-offset K] [--grace-period S] -- COMMAND ...",
        description="Start N trainer processes, one per local NPU or Gaudi card, each with its "
        "own rank, device and metrics port; stream their output with a rank prefix, forward "
        "SIGTERM/SIGINT to all, stop the rest when one fails, and exit with the most telling "
        "child exit code (2-5 over crash over 75 over 0).",
    )
    p.add_argument(
        trainer_cli.LAUNCH_NPROC,
        dest="nproc",
        type=int,
        required=True,
        help="processes to start (>= 1)",
    )
    p.add_argument(
        "--rank-offset",
        "--rank_offset",
        dest="rank_offset",
        type=int,
        help=f"global rank of the first child (default: ${env.RANK}, else 0)",
    )
    p.add_argument(
        "--grace-period",
        "--grace_period",
        dest="grace",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help="seconds a child gets after SIGTERM, when a sibling failed, before SIGKILL "
        f"(default: {DEFAULT_GRACE_SECONDS:g})",
    )
    return p


def _int_env(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not an integer; fix the pod's environment") from None


def _workers(tf_config: dict) -> int:
    task_type = str(tf_config.get("task", {}).get("type", "worker"))
    return len(tf_config.get("cluster", {}).get(task_type, []))


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> LaunchPlan:
    """The launch plan of a command line; UserError (one line) when it cannot work."""
    argv = list(argv)
    if trainer_cli.LAUNCH_END not in argv:
        raise UserError(
            "no command: put the trainer command after --, e.g. "
            f"{PROG} --nproc 8 -- densenet-train --data_dir /data"
        )
    split = argv.index(trainer_cli.LAUNCH_END)
    ns = _parser().parse_args(argv[:split])
    command = tuple(argv[split + 1 :])
    if not command:
        raise UserError("no command after --: give the trainer command, e.g. -- densenet-train")
    if ns.nproc < 1:
        raise UserError(f"--nproc {ns.nproc}: must be at least 1 (one process per device)")
    if not ns.grace >= 0:  # also refuses nan
        raise UserError(f"--grace-period {ns.grace}: must be a number of seconds >= 0")
    offset = ns.rank_offset
    if offset is None:
        offset = _int_env(environ, env.RANK) or 0
    if offset < 0:
        raise UserError(f"--rank-offset {offset}: must be >= 0")
    last = offset + ns.nproc - 1
    tf_config = env.tf_config(environ)
    rank_size = _int_env(environ, env.RANK_SIZE)
    if tf_config is not None and last >= _workers(tf_config):
        raise UserError(
            f"{env.TF_CONFIG} lists {_workers(tf_config)} worker(s) but this pod would start "
            f"ranks {offset}..{last}; list one worker per process"
        )
    if rank_size is not None and last >= rank_size:
        raise UserError(
            f"{env.RANK_SIZE}={rank_size} but this pod would start ranks {offset}..{last}; "
            f"{env.RANK_SIZE} counts the devices of the whole job"
        )
    if ns.nproc > 1 and tf_config is None and rank_size is None:
        raise UserError(
            f"--nproc {ns.nproc} needs {env.TF_CONFIG} (one worker per process) or "
            f"{env.RANK_SIZE}/{env.RANK_TABLE_FILE} (Ascend): without them every child "
            "would be a separate one-process job writing the same --log_dir"
        )
    return LaunchPlan(ns.nproc, offset, command, ns.grace)


def _entries(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def child_env(environ: Mapping[str, str], plan: LaunchPlan, local_rank: int) -> dict[str, str]:
    """The environment of child ``local_rank``: the pod's, plus its rank and device."""
    child = dict(environ)
    rank = plan.rank_offset + local_rank
    child[env.RANK] = child[env.RANK_ID] = str(rank)
    child[env.LOCAL_RANK] = str(local_rank)
    npus = _entries(environ.get(env.ASCEND_VISIBLE_DEVICES))
    device = npus[local_rank] if len(npus) >= plan.nproc else str(local_rank)
    child[env.DEVICE_ID] = child[env.ASCEND_DEVICE_ID] = device
    # Habana's bridge acquires the card whose module id is HLS_MODULE_ID. The plugin gives
    # module ids only for a subset of a node's cards; without them each process takes the
    # first free card of the container, which holds only this pod's cards.
    modules = _entries(environ.get(env.HABANA_VISIBLE_MODULES))
    if len(modules) >= plan.nproc:
        child[env.HLS_MODULE_ID] = modules[local_rank]
    if env.assembles_tf_config(environ):
        # The child assembles its TF_CONFIG from the cluster file: one that lists every process
        # of a large job cannot pass through exec (128 KiB per environment string).
        child[env.TF_TASK_INDEX] = str(rank)
    else:
        tf_config = env.tf_config(environ)
        if tf_config is not None:
            task = dict(tf_config.get("task", {}))
            task.setdefault("type", "worker")
            task["index"] = rank
            child[env.TF_CONFIG] = json.dumps({**tf_config, "task": task})
    child.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the pod log as they are printed
    return child


def _metrics_base(command: Sequence[str]) -> tuple[int | None, list[int]]:
    """(--metrics_port value, indices of the argv items that hold it); last one wins."""
    value, where = None, []
    for i, arg in enumerate(command):
        if arg == METRICS_FLAG and i + 1 < len(command):
            value, where = command[i + 1], [*where, i + 1]
        elif arg.startswith(METRICS_FLAG + "="):
            value, where = arg.split("=", 1)[1], [*where, i]
    if value is None:
        return DEFAULT_METRICS_PORT, where
    try:
        return int(value), where
    except ValueError:
        return None, where  # the trainer reports the bad value itself


def child_command(plan: LaunchPlan, local_rank: int) -> list[str]:
    """The command of child ``local_rank``: metrics on port base + local rank (0 stays off)."""
    command = list(plan.command)
    base, where = _metrics_base(command)
    if local_rank == 0 or not base:
        return command
    port = base + local_rank
    if port > 65535:
        raise UserError(
            f"{METRICS_FLAG} {base} + local rank {local_rank} is past 65535; lower the port"
        )
    if not where:
        return [*command, METRICS_FLAG, str(port)]
    for i in where:
        command[i] = str(port) if command[i - 1] == METRICS_FLAG else f"{METRICS_FLAG}={port}"
    return command


def prefix(plan: LaunchPlan, local_rank: int) -> bytes:
    """Local rank 0 prints as a lone trainer would (seed parsers read the pod log as is);
    the others' lines carry their global rank."""
    return b"" if local_rank == 0 else f"[rank {plan.rank_offset + local_rank}] ".encode()


def exit_status(returncode: int, *, stopped_by_us: bool = False) -> int:
    """A child's exit status as a shell reports it (death by signal S: 128 + S). A child that
    died of a signal the launcher sent to stop it counts as preempted: it had nothing else
    to report, and a restart resumes from the last checkpoint."""
    if returncode >= 0:
        return returncode
    if stopped_by_us:
        return int(ExitCode.PREEMPTED)
    return 128 - returncode


def _severity(code: int) -> int:
    if code in _TELLING:
        return 3
    if code == ExitCode.OK:
        return 0
    if code == ExitCode.PREEMPTED:
        return 1
    return 2  # crash, death by signal, anything unknown


def overall_exit(codes_in_exit_order: Sequence[int]) -> int:
    """The most telling code: usage/data/diverged/missing device > crash (1, signals) >
    preempted > ok; among equals, the child that exited first (the cause, not the echo)."""
    best = int(ExitCode.OK)
    for code in codes_in_exit_order:
        if _severity(code) > _severity(best):
            best = code
    return best
