"""Which job a --log_dir belongs to: the marker file ``.densenet-job``.

Two jobs given the same checkpoint directory would resume from and prune each other's
checkpoints. With the operator's ``DENSENET_JOB_IDENTITY`` set, the chief (or a lone process)
claims --log_dir by writing a marker with that identity when there is none, and every process
refuses a directory whose marker names another identity (exit 2) before it writes or restores
anything there. Without the variable nothing is written or checked (plain command-line use).

The marker appears whole or not at all (written beside, then hard-linked into place, which
never replaces another job's marker), so the other workers only read it: a missing marker is
their chief not having written it yet.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from .errors import UserError

MARKER = ".densenet-job"


def marker_path(log_dir: str) -> str:
    return os.path.join(log_dir, MARKER)


def claim(log_dir: str, identity: str | None, is_chief: bool) -> None:
    """Claim ``log_dir`` for ``identity`` (the chief writes the marker if absent) and refuse a
    directory that another identity claimed. No-op without an identity."""
    if identity is None:
        return
    path = marker_path(log_dir)
    if is_chief:
        os.makedirs(log_dir, exist_ok=True)
        _create(path, identity)
    owner = _owner(path)
    if owner is not None and owner != identity:
        raise UserError(
            f"checkpoint directory {log_dir} belongs to job {owner}, not {identity}: give this "
            "job its own checkpoint.path (or subdirectory)"
        )


def _create(path: str, identity: str) -> None:
    if os.path.exists(path):
        return
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    scratch = f"{path}.{os.getpid()}.tmp"
    with open(scratch, "w", encoding="utf-8") as f:
        json.dump({"identity": identity, "created": created}, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        try:
            os.link(scratch, path)  # atomic, and fails instead of replacing a marker
        except FileExistsError:
            pass  # another process was first: _owner reads whose it is
        except OSError:  # a filesystem without hard links: rename, still whole
            if not os.path.exists(path):
                os.replace(scratch, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _owner(path: str) -> str | None:
    """The identity in the marker; None when there is none (yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        identity = json.loads(text)["identity"]
        if not isinstance(identity, str) or not identity:
            raise ValueError("no identity")
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"checkpoint directory {os.path.dirname(path)}: its job marker {MARKER} is "
            f"unreadable ({exc}); delete it if this job owns the directory"
        ) from exc
    return identity
