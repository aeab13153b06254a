"""Launcher overhead: densenet-launch's N children against the same N processes started bare.

Two children: ``trivial`` (``python -c pass``: what the launcher itself costs, spawning,
piping and polling) and ``trainer`` (``densenet-train --mode benchmark`` at 32x32 for one
step: the seconds until each child's first log line, the start-up an operator sees). Each
case runs ``--repeats`` times; prints medians for N = 1 and N = --nproc, with and without the
launcher. On a machine with fewer cores than N the children share them, so compare launcher
against bare at the same N, not N against 1.

    .venv/bin/python benchmarks/launch_overhead.py [--nproc 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

LAUNCH = [sys.executable, "-m", "densenet_trainer.launch"]
TRIVIAL = [sys.executable, "-c", "pass"]


def trainer(log_dir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "densenet_trainer",
        "--mode",
        "benchmark",
        "--image_size",
        "32",
        "--num_classes",
        "10",
        "--batch_size",
        "4",
        "--max_train_steps",
        "1",
        "--display_every",
        "1",
        "--metrics_port",
        "0",
        "--log_dir",
        log_dir,
    ]


def environ(nproc: int) -> dict[str, str]:
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", RANK_SIZE=str(nproc))
    e.pop("TF_CONFIG", None)
    return e


def first_lines(procs: list[subprocess.Popen], started: float) -> list[float]:
    """Seconds from ``started`` until each process's first line starting with ``step:``
    (any prefix allowed), or until its exit if it prints none."""
    times: list[float] = []
    lock = threading.Lock()

    def watch(proc: subprocess.Popen) -> None:
        seen = False
        for line in proc.stdout:
            if not seen and "step:" in line:
                seen = True
                with lock:
                    times.append(time.perf_counter() - started)
        proc.wait()
        if not seen:
            with lock:
                times.append(time.perf_counter() - started)

    threads = [threading.Thread(target=watch, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def once(child: list[str], nproc: int, launcher: bool) -> float:
    """Seconds until the last child's first log line (trainer) or exit (trivial)."""
    started = time.perf_counter()
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL, "text": True}
    if launcher:
        cmd = [*LAUNCH, "--nproc", str(nproc), "--", *child]
        procs = [subprocess.Popen(cmd, env=environ(nproc), **kw)]
    else:
        procs = [subprocess.Popen(child, env=environ(nproc), **kw) for _ in range(nproc)]
    times = first_lines(procs, started)
    if any(p.returncode for p in procs):
        raise SystemExit(f"a run failed: {[p.returncode for p in procs]}")
    return max(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--children", nargs="+", default=["trivial", "trainer"])
    p.add_argument("--sizes", nargs="+", type=int, help="values of N (default: 1 and --nproc)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as log_dir:
        children = {"trivial": TRIVIAL, "trainer": trainer(log_dir)}
        for name in args.children:
            child = children[name]
            for nproc in args.sizes or (1, args.nproc):
                runs: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(args.repeats):  # interleaved: load drift hits both alike
                    for launcher in (False, True):
                        runs[launcher].append(once(child, nproc, launcher))
                row = {launcher: statistics.median(times) for launcher, times in runs.items()}
                print(
                    f"{name:8s} N={nproc}: bare {row[False]:.3f} s, densenet-launch "
                    f"{row[True]:.3f} s, overhead {row[True] - row[False]:+.3f} s "
                    f"(median of {args.repeats})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
