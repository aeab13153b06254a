"""A stand-in trainer for launcher tests: ``python fake_child.py BEHAVIOUR [args...]``.

It prints one JSON line with its argv and the launcher's variables, one line on stderr, then:

``exit:C``            exits with code C at once
``exit-if-local:J:C`` local rank J exits C; the others behave as ``wait``. With FAKE_READY_DIR
                      set, J first waits until the others can take SIGTERM (each touches a
                      file there once its handler is in place), so no sibling is stopped
                      before it could say so
``wait``              waits for SIGTERM, then exits 75 like the trainer (preempted)
``ignore-term``       ignores SIGTERM (a process stuck in a collective) until SIGKILL
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

NAMES = (
    "DENSENET_RANK",
    "DENSENET_LOCAL_RANK",
    "RANK_ID",
    "RANK_SIZE",
    "RANK_TABLE_FILE",
    "DEVICE_ID",
    "ASCEND_DEVICE_ID",
    "HLS_MODULE_ID",
    "TF_CONFIG",
    "DENSENET_TF_TASK_INDEX",
)


def _preempted(signum: int, frame: object) -> None:
    print("got SIGTERM", flush=True)
    raise SystemExit(75)


def main() -> None:
    behaviour, args = sys.argv[1], sys.argv[2:]
    print(json.dumps({"argv": args, "env": {n: os.environ.get(n) for n in NAMES}}), flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    if behaviour.startswith("exit-if-local:"):
        _, local, code = behaviour.split(":")
        behaviour = f"exit:{code}" if os.environ["DENSENET_LOCAL_RANK"] == local else "wait"
    ready_dir = os.environ.get("FAKE_READY_DIR")
    if behaviour.startswith("exit:"):
        if ready_dir:
            others = int(os.environ["RANK_SIZE"]) - 1
            deadline = time.monotonic() + 30
            while len(os.listdir(ready_dir)) < others and time.monotonic() < deadline:
                time.sleep(0.02)
        raise SystemExit(int(behaviour.split(":")[1]))
    if behaviour == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, _preempted)
    if ready_dir:
        open(os.path.join(ready_dir, f"ready-{os.environ['DENSENET_LOCAL_RANK']}"), "w").close()
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise SystemExit(1)


if __name__ == "__main__":
    main()
