#!/usr/bin/python3
"""An OCI runtime in front of runc, the default runtime of kind's own Docker daemon only
(hack/kind/dockerd.sh): it fits what a container asks for to what this machine can grant,
then runs runc with the same arguments.

kind starts every node `--privileged` and runs `docker exec --privileged` in it. Docker then
asks for every capability it knows, and runc fails ("unable to apply caps: operation not
permitted") where the capability bounding set lacks one (here CAP_SYS_RESOURCE). Before
`create`/`run` (the bundle's config.json) and `exec` (its --process file) this drops the
capabilities outside this process's bounding set, which nothing here could hold anyway, and
lowers any rlimit above this process's hard limit to it (raising one needs CAP_SYS_RESOURCE).
Everything else passes through untouched. Standard library only: the daemon's shim runs it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

RUNC = os.environ.get("DENSENET_KIND_RUNC", "/usr/sbin/runc")
# Linux capability numbers (linux/capability.h), as the OCI spec names them.
CAPS = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
# runc's global options that take a value (the subcommand comes after them).
VALUED_GLOBALS = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def bounding_set(status: str | None = None) -> set[str]:
    """The names of the capabilities in this process's bounding set (CAP_...)."""
    text = status if status is not None else Path("/proc/self/status").read_text()
    line = next(line for line in text.splitlines() if line.startswith("CapBnd:"))
    mask = int(line.split()[1], 16)
    return {f"CAP_{name}" for bit, name in enumerate(CAPS) if mask >> bit & 1}


def fit_process(process: dict, allowed: set[str]) -> list[str]:
    """Drop capabilities outside `allowed` and clamp rlimits to this process's hard limits,
    in an OCI `process` object; returns what changed (for the log)."""
    changed: list[str] = []
    known = {f"CAP_{name}" for name in CAPS}
    for kind, names in (process.get("capabilities") or {}).items():
        kept = [n for n in names if n in allowed or n not in known]
        changed += [f"{kind}:{n}" for n in names if n not in kept]
        process["capabilities"][kind] = kept
    for limit in process.get("rlimits") or []:
        number = getattr(resource, limit["type"], None)
        if number is None:
            continue
        hard = resource.getrlimit(number)[1]
        if hard != resource.RLIM_INFINITY and limit["hard"] > hard:
            changed.append(f"{limit['type']}:{limit['hard']}->{hard}")
            limit["hard"] = hard
            limit["soft"] = min(limit["soft"], hard)
    return changed


def option(args: list[str], *names: str) -> str | None:
    """The value of the first of `names` in `args` (`--x v`, `--x=v` or `-x v`)."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def subcommand(args: list[str]) -> int | None:
    """The index of runc's subcommand in `args`, after its global options."""
    i = 0
    while i < len(args):
        if not args[i].startswith("-"):
            return i
        i += 2 if args[i] in VALUED_GLOBALS else 1
    return None


def rewrite(path: Path, edit: str) -> list[str]:
    spec = json.loads(path.read_text())
    process = spec["process"] if edit == "spec" else spec
    changed = fit_process(process, bounding_set())
    if changed:
        tmp = path.with_name(path.name + ".densenet")
        tmp.write_text(json.dumps(spec))
        tmp.replace(path)
    return changed


def main(args: list[str]) -> None:
    at = subcommand(args)
    if at is not None:
        rest = args[at + 1 :]
        target = None
        if args[at] in ("create", "run"):
            target = Path(option(rest, "--bundle", "-b") or ".") / "config.json", "spec"
        elif args[at] == "exec" and (process := option(rest, "--process", "-p")):
            target = Path(process), "process"
        if target is not None:
            changed = rewrite(*target)
            log = os.environ.get("DENSENET_KIND_RUNTIME_LOG")
            if changed and log:
                with open(log, "a") as out:
                    out.write(f"{args[at]} {target[0]}: dropped {' '.join(changed)}\n")
    os.execv(RUNC, [RUNC, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
