"""Runs inside a pod's namespaces (started as `ip netns exec NS unshare --mount --uts
--propagation private -- python -I -S shim.py SPEC`): sets the hostname, bind-mounts the
volumes, changes directory and execs the container command. Standard library only."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import socket
import sys

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def bind(source: str, target: str, read_only: bool) -> None:
    if _libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind mount {source} -> {target}: {os.strerror(err)}")
    if read_only:
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        if _libc.mount(None, target.encode(), None, flags, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"read-only remount {target}: {os.strerror(err)}")


def _covers(target: str, path: str) -> bool:
    target = target.rstrip("/") or "/"
    return path == target or path.startswith(target.rstrip("/") + "/")


def _open_source(path: str) -> int:
    try:
        return os.open(path, os.O_PATH)
    except OSError as exc:
        raise OSError(exc.errno, f"volume source {path}: {exc.strerror}") from None


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        socket.sethostname(spec["hostname"])
        # Every source is opened before the first mount and bound through its descriptor: a
        # volume mounted over a directory (an emptyDir at /tmp) would otherwise hide the
        # sources and the image's paths that live below it on the host.
        image_fds = {path: os.open(path, os.O_PATH) for path in spec.get("image_paths", [])}
        source_fds = [_open_source(m["source"]) for m in spec["mounts"]]
        for m, fd in zip(spec["mounts"], source_fds, strict=True):
            source = f"/proc/self/fd/{fd}"
            # A mount inside an earlier one (a configMap under an emptyDir) needs its target
            # made in that volume, which only exists in here.
            if not os.path.lexists(m["target"]):
                if os.path.isdir(source):
                    os.makedirs(m["target"])
                else:
                    os.makedirs(os.path.dirname(m["target"]), exist_ok=True)
                    open(m["target"], "a").close()
            bind(source, m["target"], m["read_only"])
            os.close(fd)
        for path, fd in image_fds.items():
            if any(_covers(m["target"], path) for m in spec["mounts"]):
                os.makedirs(path, exist_ok=True)
                bind(f"/proc/self/fd/{fd}", path, False)
            os.close(fd)
        os.chdir(spec["cwd"])
    except OSError as exc:
        print(f"devnode: cannot set up the container: {exc}", file=sys.stderr)
        raise SystemExit(128) from None
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        print(f"devnode: cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(127) from None


if __name__ == "__main__":
    main(sys.argv[1])
