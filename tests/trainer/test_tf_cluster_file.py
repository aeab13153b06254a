"""TF_CONFIG from the operator's cluster file: each pod carries only its task, the job's worker
list is one mounted file, and the trainer assembles the very TF_CONFIG the operator used to put
on every pod (a 128x8 Gaudi job's, ~196 KB, is over Linux's 128 KiB for one environment
string, so those pods could not start).

The expected strings are written by hand: GOLDEN is the TF_CONFIG the operator rendered for
worker 1 of a 2-worker CPU job "smoke" in namespace ns1 before the file existed (the old golden
pod of tests/operator/test_render.py), byte for byte.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_cli import SMALL, env, free_port

from densenet_trainer import env as trainer_env
from densenet_trainer.errors import ExitCode, UserError
from densenet_trainer.launch import plan as launch

WORKERS = '["smoke-worker-0.smoke.ns1.svc:2222","smoke-worker-1.smoke.ns1.svc:2222"]'
CLUSTER_FILE = '{"worker":' + WORKERS + "}"
GOLDEN = '{"cluster":{"worker":' + WORKERS + '},"task":{"type":"worker","index":1}}'


def _pod_env(path: Path, index: int, **extra: str) -> dict[str, str]:
    """What the operator now sets on a trainer container (and the mounted file's path)."""
    return {
        "DENSENET_TF_CLUSTER_FILE": str(path),
        "DENSENET_TF_TASK_TYPE": "worker",
        "DENSENET_TF_TASK_INDEX": str(index),
        **extra,
    }


@pytest.fixture
def cluster_file(tmp_path: Path) -> Path:
    path = tmp_path / "tf-cluster" / "cluster.json"
    path.parent.mkdir()
    path.write_text(CLUSTER_FILE)
    return path


def test_the_assembled_tf_config_is_the_one_the_operator_used_to_render(
    cluster_file: Path,
) -> None:
    environ = _pod_env(cluster_file, 1)
    assert trainer_env.tf_config_json(environ) == GOLDEN
    assert trainer_env.tf_config(environ) == json.loads(GOLDEN)
    assert (trainer_env.tf_config_workers(environ), trainer_env.tf_config_rank(environ)) == (2, 1)
    # what TensorFlow reads: the process's own environment, set before TF starts
    trainer_env.export_tf_config(environ)
    assert environ["TF_CONFIG"] == GOLDEN


def test_a_complete_tf_config_in_the_environment_wins(cluster_file: Path) -> None:
    given = json.dumps({"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"index": 2}})
    environ = _pod_env(cluster_file, 0, TF_CONFIG=given)
    assert not trainer_env.assembles_tf_config(environ)
    assert trainer_env.tf_config_json(environ) == given
    trainer_env.export_tf_config(environ)
    assert environ["TF_CONFIG"] == given
    assert trainer_env.tf_config_workers(environ) == 3
    # one without a cluster is not complete: the file's cluster is used
    environ = _pod_env(cluster_file, 1, TF_CONFIG='{"task":{"type":"worker","index":0}}')
    assert trainer_env.tf_config_json(environ) == GOLDEN
    # and neither: no TF_CONFIG, one worker, nothing exported
    environ = {}
    trainer_env.export_tf_config(environ)
    assert environ == {}
    assert trainer_env.tf_config_workers(environ) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DENSENET_TF_TASK_INDEX": "x"}, "DENSENET_TF_TASK_INDEX='x' is not an integer"),
        ({"DENSENET_TF_TASK_INDEX": "2"}, "DENSENET_TF_TASK_INDEX=2 but"),
        ({"DENSENET_TF_TASK_TYPE": "chief"}, "lists 0 'chief' task(s)"),
        ({"DENSENET_TF_CLUSTER_FILE": "/nonexistent/cluster.json"}, "cannot read the job's"),
    ],
)
def test_a_broken_cluster_file_or_task_is_one_line(
    cluster_file: Path, change: dict[str, str], message: str
) -> None:
    environ = {**_pod_env(cluster_file, 1), **change}
    with pytest.raises(UserError) as refused:
        trainer_env.export_tf_config(environ)
    assert message in refused.value.message
    assert "\n" not in refused.value.message
    assert "TF_CONFIG" not in environ


def test_launcher_children_get_their_index_not_the_whole_list(tmp_path: Path) -> None:
    """Gaudi: one pod, 8 processes, 128 pods. Nothing that grows with the job goes through
    exec to a child; each child assembles its own TF_CONFIG."""
    workers = [f"g-worker-{i}.g.ns1.svc:{2410 + j}" for i in range(128) for j in range(8)]
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps({"worker": workers}, separators=(",", ":")))
    environ = _pod_env(path, 16, DENSENET_RANK="16")
    plan = launch.parse(["--nproc", "8", "--", "densenet-train"], environ)
    for local_rank in range(8):
        child = launch.child_env(environ, plan, local_rank)
        assert "TF_CONFIG" not in child
        assert child["DENSENET_TF_TASK_INDEX"] == str(16 + local_rank)
        assert max(len(value) for value in child.values()) < 4096
        assert trainer_env.tf_config_json(child) == json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 16 + local_rank}},
            separators=(",", ":"),
        )
    with pytest.raises(UserError, match="lists 1024 worker"):
        launch.parse(["--nproc", "9", "--rank-offset", "1016", "--", "x"], environ)


def launch_two(
    cluster_file: Path, child: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """densenet-launch with two children, in a pod's environment with only the file and task."""
    return subprocess.run(
        [sys.executable, "-m", "densenet_trainer.launch", "--nproc", "2", "--", *child],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**_pod_env(cluster_file, 0, DENSENET_RANK="0")),
        check=False,
    )


def test_a_real_launcher_passes_each_child_its_index(cluster_file: Path) -> None:
    fake = [sys.executable, str(Path(__file__).with_name("fake_child.py")), "exit:0"]
    proc = launch_two(cluster_file, fake, timeout=60)
    assert proc.returncode == 0, proc.stderr
    reports = [json.loads(re.sub(r"^\[rank \d+\] ", "", line)) for line in proc.stdout.splitlines()]
    got = sorted((r["env"]["DENSENET_TF_TASK_INDEX"], r["env"]["TF_CONFIG"]) for r in reports)
    assert got == [("0", None), ("1", None)]


@pytest.mark.slow
def test_two_real_trainers_train_as_one_job_from_the_cluster_file(tmp_path: Path) -> None:
    """densenet-launch starts two real trainers with only the file and the pod's task (as a
    Gaudi pod, on the CPU): they are one TensorFlow job (the chief alone writes checkpoints)
    and both stop at the last step."""
    path = tmp_path / "cluster.json"
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    path.write_text(json.dumps({"worker": workers}, separators=(",", ":")))
    trainer = [sys.executable, "-m", "densenet_trainer", "--synthetic", *SMALL]
    trainer += ["--max_train_steps", "3", "--display_every", "1", "--export", "false"]
    trainer += ["--log_dir", str(tmp_path / "run")]
    proc = launch_two(path, trainer, timeout=420)
    text = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.OK, text
    assert re.search(r"^step:\s*3\s", proc.stdout, re.M), text
    assert re.search(r"^\[rank 1\] step:\s*3\s", proc.stdout, re.M), text
    assert (tmp_path / "run" / "ckpt-3.index").exists()
    assert not list((tmp_path / "run").glob("*worker*")), "non-chief left files behind"
