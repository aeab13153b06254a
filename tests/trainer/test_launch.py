"""densenet-launch: one process per local device, with the environment the operator relies on.

Pure tests pin the plan (ranks, devices, TF_CONFIG, metrics ports, exit-code choice); process
tests run the launcher on stand-in children (fake_child.py) and on real trainers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainer_cli import SMALL, STEP_RE, env, free_port, wait_for_step

from densenet_trainer.errors import ExitCode, UserError
from densenet_trainer.launch import plan as launch

FAKE = str(Path(__file__).with_name("fake_child.py"))
LAUNCH = [sys.executable, "-m", "densenet_trainer.launch"]


def _plan(argv: list[str], **environ: str) -> launch.LaunchPlan:
    return launch.parse(argv, environ)


# --- the plan -------------------------------------------------------------------------------


def test_rank_offset_comes_from_densenet_rank_and_children_get_global_ranks() -> None:
    environ = {"DENSENET_RANK": "8", "RANK_SIZE": "16", "RANK_TABLE_FILE": "/rt/hccl.json"}
    plan = _plan(["--nproc", "8", "--", "densenet-train"], **environ)
    assert plan.rank_offset == 8
    child = launch.child_env(environ, plan, 3)
    assert (child["DENSENET_RANK"], child["RANK_ID"], child["DENSENET_LOCAL_RANK"]) == (
        "11",
        "11",
        "3",
    )
    # job-wide values pass through unchanged
    assert (child["RANK_SIZE"], child["RANK_TABLE_FILE"]) == ("16", "/rt/hccl.json")
    assert _plan(["--nproc", "2", "--rank-offset", "4", "--", "x"], **environ).rank_offset == 4
    assert _plan(["--nproc", "1", "--", "x"]).rank_offset == 0


@pytest.mark.parametrize(
    ("visible", "want"),
    [
        ("4,5,6,7", ["4", "5", "6", "7"]),  # the device plugin's allocation
        ("4, 5", ["0", "1", "2", "3"]),  # fewer entries than processes: local index
        (None, ["0", "1", "2", "3"]),
    ],
)
def test_device_ids_follow_the_plugin_allocation(visible: str | None, want: list[str]) -> None:
    environ = {"RANK_SIZE": "4"} | ({"ASCEND_VISIBLE_DEVICES": visible} if visible else {})
    plan = _plan(["--nproc", "4", "--", "x"], **environ)
    children = [launch.child_env(environ, plan, j) for j in range(4)]
    assert [c["DEVICE_ID"] for c in children] == want
    assert [c["ASCEND_DEVICE_ID"] for c in children] == want


def test_gaudi_children_get_their_module_and_tf_config_index() -> None:
    workers = [f"job-worker-0.job.ns.svc:{2410 + j}" for j in range(2)]
    workers += [f"job-worker-1.job.ns.svc:{2410 + j}" for j in range(2)]
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}
    environ = {
        "TF_CONFIG": json.dumps(tf_config),
        "DENSENET_RANK": "2",
        "HABANA_VISIBLE_MODULES": "6,7",
    }
    plan = _plan(["--nproc", "2", "--", "x"], **environ)
    children = [launch.child_env(environ, plan, j) for j in range(2)]
    assert [c["HLS_MODULE_ID"] for c in children] == ["6", "7"]
    got = [json.loads(c["TF_CONFIG"]) for c in children]
    assert [g["task"] for g in got] == [
        {"type": "worker", "index": 2},
        {"type": "worker", "index": 3},
    ]
    assert all(g["cluster"] == tf_config["cluster"] for g in got)
    # without module ids (whole node), Habana's bridge takes the first free card
    del environ["HABANA_VISIBLE_MODULES"]
    assert "HLS_MODULE_ID" not in launch.child_env(environ, plan, 1)


@pytest.mark.parametrize(
    ("command", "want"),
    [
        (["densenet-train"], [None, "9411", "9412"]),  # default 9410 + local rank
        (["t", "--metrics_port", "9500"], ["9500", "9501", "9502"]),
        (["t", "--metrics_port=9500"], ["9500", "9501", "9502"]),
        (["t", "--metrics_port", "0"], ["0", "0", "0"]),  # off stays off
    ],
)
def test_metrics_port_is_base_plus_local_rank(command: list[str], want: list) -> None:
    plan = _plan(["--nproc", "3", "--", *command], RANK_SIZE="3")
    for j, port in enumerate(want):
        argv = launch.child_command(plan, j)
        found = re.search(r"--metrics_port[= ](\d+)", " ".join(argv))
        assert (found.group(1) if found else None) == port, argv


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--nproc", "2"], {"RANK_SIZE": "2"}, "no command"),
        (["--nproc", "2", "--"], {"RANK_SIZE": "2"}, "no command after --"),
        (["--nproc", "0", "--", "x"], {}, "--nproc 0: must be at least 1"),
        (["--nproc", "two", "--", "x"], {}, "--nproc: invalid int value"),
        (["--", "x"], {}, "--nproc"),
        (["--nproc", "2", "--", "x"], {}, "needs TF_CONFIG"),
        (["--nproc", "4", "--", "x"], {"RANK_SIZE": "2"}, "RANK_SIZE=2"),
        (["--nproc", "2", "--", "x"], {"DENSENET_RANK": "x", "RANK_SIZE": "2"}, "DENSENET_RANK"),
        (
            ["--nproc", "2", "--", "x"],
            {"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}, "task": {"index": 0}}'},
            "TF_CONFIG lists 1 worker(s)",
        ),
    ],
)
def test_bad_usage_is_one_line(argv: list[str], environ: dict, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        launch.parse(argv, environ)


@pytest.mark.parametrize(
    ("codes", "want"),
    [
        ([0, 0, 0], 0),
        ([75, 75], 75),
        ([0, 75], 75),
        ([75, 1], 1),
        ([75, 137, 75], 137),  # a child killed by the OOM killer: crash
        ([1, 4, 75], 4),  # diverged explains the crash of the others
        ([3, 2], 3),  # among equals, the first to exit is the cause
        ([75, 5], 5),
    ],
)
def test_the_most_telling_exit_code_wins(codes: list[int], want: int) -> None:
    assert launch.overall_exit(codes) == want


def test_a_child_we_stopped_counts_as_preempted() -> None:
    assert launch.exit_status(-signal.SIGKILL) == 128 + signal.SIGKILL
    assert launch.exit_status(-signal.SIGTERM, stopped_by_us=True) == ExitCode.PREEMPTED
    assert launch.exit_status(4, stopped_by_us=True) == 4


# --- processes, with stand-in children ------------------------------------------------------


def _launch(*args: str, environ: dict[str, str], timeout: float = 60) -> subprocess.Popen:
    return subprocess.Popen(
        [*LAUNCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**environ),
    )


def test_usage_error_exits_2_with_one_line() -> None:
    proc = _launch("--nproc", "0", "--", "densenet-train", environ={})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.USAGE
    assert err.strip().splitlines() == [
        "densenet-launch: error: --nproc 0: must be at least 1 (one process per device)"
    ]


def test_children_get_their_environment_and_lines_carry_their_rank() -> None:
    environ = {"RANK_SIZE": "8", "DENSENET_RANK": "4", "ASCEND_VISIBLE_DEVICES": "4,5,6,7"}
    proc = _launch(
        "--nproc", "4", "--", sys.executable, FAKE, "exit:0", "--lr", "0.1", environ=environ
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reports = {}
    for line in out.splitlines():
        match = re.match(r"^(\[rank (\d+)\] )?(\{.*)$", line)
        assert match, line
        report = json.loads(match.group(3))
        rank = int(report["env"]["RANK_ID"])
        # local rank 0 prints as a lone trainer would; the others carry their global rank
        assert match.group(2) == (None if rank == 4 else str(rank)), line
        reports[rank] = report
    assert sorted(reports) == [4, 5, 6, 7]
    for rank, report in reports.items():
        local = rank - 4
        assert report["env"]["DENSENET_RANK"] == str(rank)
        assert report["env"]["DENSENET_LOCAL_RANK"] == str(local)
        assert report["env"]["DEVICE_ID"] == report["env"]["ASCEND_DEVICE_ID"] == str(rank)
        assert report["env"]["RANK_SIZE"] == "8"
        ports = [] if local == 0 else ["--metrics_port", str(9410 + local)]
        assert report["argv"] == ["--lr", "0.1", *ports]
    assert sorted(err.splitlines()) == [
        "[rank 5] a line on stderr",
        "[rank 6] a line on stderr",
        "[rank 7] a line on stderr",
        "a line on stderr",
    ]


def _wait_for(proc: subprocess.Popen, lines: list[str], want: str, count: int) -> None:
    """Read the launcher's stdout until ``count`` lines contain ``want``."""
    deadline = time.monotonic() + 60
    while sum(want in line for line in lines) < count:
        assert time.monotonic() < deadline and proc.poll() is None, lines
        lines.append(proc.stdout.readline())


def test_one_failing_child_stops_the_rest_with_its_code(tmp_path) -> None:
    proc = _launch(
        "--nproc", "3", "--", sys.executable, FAKE, "exit-if-local:1:3",
        environ={"RANK_SIZE": "3", "FAKE_READY_DIR": str(tmp_path)},
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.BAD_DATA, err
    assert out.count("got SIGTERM") == 2, out  # ranks 0 and 2 were asked to stop
    assert "rank 1 (local rank 1) exited 3; stopping the other 2 process(es)" in err


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    proc = _launch(
        "--nproc",
        "2",
        "--grace-period",
        "1",
        "--",
        sys.executable,
        FAKE,
        "ignore-term",
        environ={"RANK_SIZE": "2"},
    )
    lines: list[str] = []
    _wait_for(proc, lines, "ready", 2)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    os.kill(int(children[-1]), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    # one child died of SIGKILL it did not get from us (like the OOM killer): a crash
    assert proc.returncode == 128 + signal.SIGKILL, err
    assert "did not stop in time: SIGKILL" in err


def test_sigterm_is_forwarded_to_every_child() -> None:
    proc = _launch("--nproc", "3", "--", sys.executable, FAKE, "wait", environ={"RANK_SIZE": "3"})
    lines: list[str] = []
    _wait_for(proc, lines, "ready", 3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.PREEMPTED, err
    assert (("".join(lines) + out).count("got SIGTERM")) == 3


# --- processes, with real trainers ----------------------------------------------------------


def _trainer(log_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "densenet_trainer",
        "--synthetic",
        *SMALL,
        "--max_train_steps",
        "200",
        "--display_every",
        "1",
        "--save_checkpoints_steps",
        "1000",
        "--export",
        "false",
        "--log_dir",
        str(log_dir),
        *extra,
    ]


def _tf_config(n: int) -> str:
    workers = [f"127.0.0.1:{free_port()}" for _ in range(n)]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}})


@pytest.mark.slow
def test_sigterm_stops_two_real_trainers_at_one_step_and_exits_75(tmp_path: Path) -> None:
    """Two trainers as two workers of one job (the launcher gives each its TF_CONFIG index:
    were they both index 0, the job would never start). SIGTERM to the launcher: both stop at
    the same step, the chief writes the checkpoint, the launcher exits 75."""
    out = tmp_path / "pod.log"
    with open(out, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [*LAUNCH, "--nproc", "2", "--", *_trainer(tmp_path / "run")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env(TF_CONFIG=_tf_config(2)),
        )
    try:
        wait_for_step(out, 2, proc, timeout=300)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    text = out.read_text()
    assert code == ExitCode.PREEMPTED, text
    stops = re.findall(r"^(\[rank 1\] )?preempted at step (\d+):", text, re.M)
    assert len(stops) == 2 and stops[0][1] == stops[1][1], text
    step = int(stops[0][1])
    assert (tmp_path / "run" / f"ckpt-{step}.index").exists()
    assert not list((tmp_path / "run").glob("*worker*")), "non-chief left files behind"
    # rank 0's seed-format lines are unprefixed; rank 1's carry the prefix
    assert STEP_RE.search(text) and re.search(r"^\[rank 1\] step:", text, re.M), text
    # the log file is the chief's alone: each step once
    logged = STEP_RE.findall((tmp_path / "run" / "densenet121.log").read_text())
    assert logged == sorted(set(logged), key=int)


def port_with_the_next_taken() -> tuple[int, socket.socket]:
    """A free port and a socket bound to the port after it (free_port says nothing of that
    one: another process may hold it, seen in CI)."""
    for _ in range(100):
        base = free_port()
        taken = socket.socket()
        try:
            taken.bind(("0.0.0.0", base + 1))
        except OSError:
            taken.close()
            continue
        return base, taken
    raise AssertionError("no free port followed by a free port in 100 tries")


@pytest.mark.slow
def test_a_real_child_that_fails_stops_its_sibling_with_its_code(tmp_path: Path) -> None:
    """Local rank 1's metrics port (base + 1) is taken: it exits 2 (usage), and its sibling,
    left waiting for it in the job's first collective, is stopped."""
    base, taken = port_with_the_next_taken()
    with taken:
        taken.listen()
        proc = subprocess.run(
            [
                *LAUNCH,
                "--nproc",
                "2",
                "--grace-period",
                "5",
                "--",
                *_trainer(tmp_path / "run"),
                "--metrics_port",
                str(base),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env(TF_CONFIG=_tf_config(2)),
            check=False,
        )
    assert proc.returncode == ExitCode.USAGE, proc.stdout + proc.stderr
    assert re.search(
        rf"^\[rank 1\] densenet-train: error: --metrics_port {base + 1}: cannot listen",
        proc.stderr,
        re.M,
    ), proc.stderr
    assert "rank 1 (local rank 1) exited 2; stopping the other 1 process(es)" in proc.stderr
