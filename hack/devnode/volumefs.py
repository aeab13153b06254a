"""Volume files on the host: file volumes are rewritten file by file (temp file + rename inside a
bind-mounted directory, so updates reach the pod), and mount points the runner had to create on
the host are recorded so they can be removed again."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from devnode.volumes import Files


def sync_files(root: Path, files: Files) -> bool:
    """Make `root` hold exactly `files`; returns whether anything changed."""
    changed = False
    root.mkdir(parents=True, exist_ok=True)
    for rel, (content, mode) in files.items():
        path = root / rel
        try:
            same = path.read_bytes() == content and (path.stat().st_mode & 0o777) == mode
        except OSError:
            same = False
        if same:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        tmp.chmod(mode)
        tmp.replace(path)
        changed = True
    wanted = {root / rel for rel in files}
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            if path not in wanted:
                path.unlink(missing_ok=True)
                changed = True
        for name in dirnames:
            path = Path(dirpath) / name
            if not any(path.iterdir()):
                path.rmdir()
    return changed


class MountPoints:
    """Directories (and empty files) created on the host so bind mounts have a target; the
    ledger survives a crash so the next start can remove them."""

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._users: dict[str, set[str]] = {}  # path -> pod uids using it

    def ensure(self, target: str, is_file: bool, uid: str) -> None:
        with self._lock:
            missing = []
            path = Path(target)
            while not path.exists() and not path.is_symlink():
                missing.append(path)
                path = path.parent
            for p in reversed(missing):
                if p == Path(target) and is_file:
                    p.touch()
                else:
                    p.mkdir()
                self._record(str(p))
            for p in [*missing, Path(target)]:
                self._users.setdefault(str(p), set()).add(uid)

    def _record(self, path: str) -> None:
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with self.ledger.open("a") as f:
            f.write(path + "\n")

    def release(self, uid: str) -> None:
        with self._lock:
            for users in self._users.values():
                users.discard(uid)
            self._remove_unused()

    def _remove_unused(self) -> None:
        if not self.ledger.exists():
            return
        created = [p for p in self.ledger.read_text().splitlines() if p]
        kept = []
        # Deepest first, so parents are empty by the time they come up.
        for p in sorted(set(created), key=lambda s: s.count("/"), reverse=True):
            if self._users.get(p):
                kept.append(p)
                continue
            path = Path(p)
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                elif path.is_file() and path.stat().st_size == 0:
                    path.unlink()
            except OSError:
                kept.append(p)  # not empty: someone else put files there; leave it
        self.ledger.write_text("".join(f"{p}\n" for p in kept if Path(p).exists()))

    def remove_all(self) -> None:
        with self._lock:
            self._users.clear()
            self._remove_unused()
