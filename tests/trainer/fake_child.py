"""A stand-in trainer for launcher tests: ``python fake_child.py BEHAVIOUR [args...]``.

It prints one JSON line with its argv and the launcher's variables, one line on stderr, then:

``exit:C``            exits with code C at once
``exit-if-local:J:C`` local rank J exits C at once; the others behave as ``wait``
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
    if behaviour.startswith("exit:"):
        raise SystemExit(int(behaviour.split(":")[1]))
    if behaviour == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, _preempted)
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise SystemExit(1)


if __name__ == "__main__":
    main()
