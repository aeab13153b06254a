"""Recovery end to end: a real 2-worker CPU training in containers from `densenet-trainer:dev`
on the real node (containerd and the kubelet), under a real `densenet-operator run`, survives a
SIGKILLed worker (whole-job restart from the last checkpoint), a deleted worker pod and a
suspend/resume (SIGTERM: zero steps lost), and the job still learns the digits, both workers'
seed-format lines are in `kubectl logs`, and deleting the job leaves nothing of its pods on the
machine: no process, no pod sandbox."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devcluster.realnode import trainer_pid
from devdata.digits import write_dataset
from tests.deploy import e2e
from tests.images.conftest import Image
from tests.network import TINY_ARGS
from tests.operator.harness import Jobs, OperatorProcess
from tests.polling import eventually
from tests.real_node import NODE_SELECTOR, TOLERATION, host_dir, sandboxes

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STEP = re.compile(r"^step:\s*(\d+)\s", re.M)
RESUMED = re.compile(r"^resumed from \S+ at step (\d+)", re.M)
PREEMPTED = re.compile(r"^preempted at step (\d+): checkpoint written", re.M)
CHECKPOINT_EVERY = 20
MAX_STEPS = 120
MIN_TOP1 = 0.5  # five times chance (10 classes)


class ChiefLog:
    """The chief's log file in the checkpoint directory (appended across restarts)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        return self.path.read_text() if self.path.exists() else ""

    def steps(self) -> list[int]:
        return [int(s) for s in STEP.findall(self.text())]

    def last_step(self) -> int:
        steps = self.steps()
        return steps[-1] if steps else 0

    def resumes(self) -> list[int]:
        return [int(s) for s in RESUMED.findall(self.text())]

    def preemptions(self) -> list[int]:
        """Steps where the chief stopped on SIGTERM with a checkpoint."""
        return [int(s) for s in PREEMPTED.findall(self.text())]

    def wait_step(self, at_least: int, timeout: float = 240) -> int:
        return eventually(
            lambda: self.last_step() if self.last_step() >= at_least else None,
            timeout=timeout,
            interval=0.5,
            what=f"the chief's step {at_least}",
        )

    def wait_resume(self, count: int, timeout: float = 240) -> int:
        def resumed() -> int | None:
            found = self.resumes()
            return found[count - 1] if len(found) >= count else None

        return eventually(resumed, timeout=timeout, interval=0.5, what=f"resume #{count}")


def digits_job(data: Path, checkpoints: Path, image: str) -> dict:
    job = yaml.safe_load((REPO / "examples" / "cpu-digits.yaml").read_text())
    spec = job["spec"]
    spec["image"] = image
    spec["scheduling"] = {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]}
    spec["dataset"]["volume"] = {"hostPath": {"path": str(data), "type": "Directory"}}
    spec["checkpoint"] = {
        "everySteps": CHECKPOINT_EVERY,
        "volume": {"hostPath": {"path": str(checkpoints), "type": "Directory"}},
    }
    spec["training"].update(maxSteps=MAX_STEPS, batchSize=16)
    spec["training"]["extraArgs"] += TINY_ARGS
    return job


@pytest.fixture(scope="module")
def digits() -> Iterator[Path]:
    root = host_dir("densenet-digits-")
    write_dataset(root)
    yield root
    shutil.rmtree(root)


@pytest.mark.usefixtures("real_node")
def test_kill_delete_suspend_resume_then_clean_removal(
    cluster, jobs, tmp_path, digits, trainer_image: Image
):
    checkpoints = host_dir("densenet-checkpoints-", writable=True)
    operator = OperatorProcess(cluster, jobs.namespace, tmp_path, "--progress-interval", "2")
    operator.start()
    try:
        run_scenario(cluster, jobs, checkpoints, digits, trainer_image.name)
    finally:
        operator.stop()
        shutil.rmtree(checkpoints)


def run_scenario(cluster, jobs: Jobs, checkpoints: Path, digits: Path, image: str) -> None:
    job = digits_job(digits, checkpoints, image)
    name = job["metadata"]["name"]
    jobs.create(job)
    namespace = jobs.namespace
    log = ChiefLog(checkpoints / name / "densenet121.log")  # the job's own directory

    # 1. SIGKILL one worker's process: a counted restart, resumed within one interval.
    killed_at = log.wait_step(CHECKPOINT_EVERY * 2)
    pid = eventually(lambda: trainer_pid(name, 1), timeout=30, what="worker 1's process")
    os.kill(pid, signal.SIGKILL)
    kill_time = time.monotonic()
    resumed = log.wait_resume(1)
    assert killed_at - CHECKPOINT_EVERY <= resumed <= killed_at + 10, (killed_at, resumed)
    first_new = log.wait_step(resumed + 1)
    recovery_seconds = time.monotonic() - kill_time
    status = jobs.status(name)
    assert status["restarts"] == 1, status
    assert "killed by signal 9" in jobs.condition(name, "Restarting")["message"]
    # Goodput: the restart's record closes at the new attempt's first step.
    goodput = eventually(
        lambda: (g := jobs.status(name).get("goodput") or {}).get("recoveries") == 1 and g,
        timeout=60,
        what="the recovery in status.goodput",
    )
    assert 0 <= goodput["stepsLost"] <= CHECKPOINT_EVERY, goodput  # at most one interval
    assert 0 < goodput["lastRecoverySeconds"] <= recovery_seconds + 5, goodput

    # 2. `kubectl delete pod` of a worker: SIGTERM, every rank stops at one step, no loss.
    log.wait_step(first_new + CHECKPOINT_EVERY)
    jobs.core.delete_namespaced_pod(f"{name}-worker-1", namespace)
    resumed_after_delete = log.wait_resume(2)
    assert log.preemptions()[-1] == resumed_after_delete, log.text()[-2000:]
    assert jobs.status(name)["restarts"] == 1  # a deletion is not counted

    # 3. Suspend, then resume: no step lost either.
    log.wait_step(resumed_after_delete + 10)
    jobs.patch(name, {"spec": {"runPolicy": {"suspend": True}}})
    jobs.wait_phase(name, "Suspended")
    eventually(lambda: not jobs.pods(name), timeout=120, what="pods gone while suspended")
    suspended_at = log.preemptions()[-1]
    assert suspended_at >= log.last_step()
    jobs.patch(name, {"spec": {"runPolicy": {"suspend": False}}})
    assert log.wait_resume(3) == suspended_at

    status = jobs.wait_phase(name, "Succeeded", timeout=600)
    assert status["restarts"] == 1 and status["preemptions"] == 1  # suspend is neither
    # The preemption lost nothing: every rank checkpointed the step it stopped at.
    assert status["goodput"]["recoveries"] == 2, status["goodput"]
    assert status["goodput"]["stepsLost"] == goodput["stepsLost"], status["goodput"]
    assert log.last_step() == MAX_STEPS
    # Both workers' seed-format lines are in `kubectl logs`, and the model learned the digits
    # through every interruption: chance is 10 %.
    logs = e2e.worker_logs(jobs.core, namespace, name, replicas=2)
    e2e.check_seed_logs(logs, MAX_STEPS)
    # The workers left together: no collective was left waiting for one that had exited, and
    # the chief (the coordination service's host) left last, so no heartbeat went unanswered.
    aborted = [i for i, t in logs.items() if "StartAbort" in t]
    assert not aborted, logs
    top1 = e2e.final_top1(logs)
    assert top1 >= MIN_TOP1, top1
    print(f"\nrecovery after SIGKILL: {recovery_seconds:.1f}s from kill to step {first_new}")
    print(f"status.goodput: {status['goodput']}")
    print(f"validation top-1 after the interruptions: {top1:.3f}")

    # 4. Deleting the job leaves no process and no pod sandbox (its network namespace and
    # mounts) of its pods.
    uids = [p.metadata.uid for p in jobs.pods(name)]
    jobs.delete(name)
    eventually(lambda: not jobs.pods(name), timeout=120, what="pods deleted with the job")

    def leftovers() -> list[str]:
        found = [f"process of rank {r}" for r in (0, 1) if trainer_pid(name, r) is not None]
        return found + sandboxes(cluster.paths, uids)

    deadline = time.monotonic() + 90
    while leftovers() and time.monotonic() < deadline:
        time.sleep(1)
    assert leftovers() == [], "left on the machine after deleting the job"
