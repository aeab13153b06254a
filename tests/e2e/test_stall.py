"""A stalled job is noticed: a real 2-worker job in containers from `densenet-trainer:dev` on the
real node, whose trainers are stopped with SIGSTOP (a hung filesystem, a wedged device: no step
anywhere), gets the Stalled condition within progressDeadlineSeconds plus a progress read, loses
it once it moves again after SIGCONT, and with stalledAction Restart is restarted (counted) and
then succeeds from its checkpoint.

Both ranks are stopped. With the chief alone stopped, TensorFlow's coordination service turns
the freeze into a crash: worker 1's heartbeat RPC to the chief times out, its collective is
aborted ("Collective ops is aborted by: Deadline Exceeded ... CoordinationService/Heartbeat")
and it exits, which the operator handles as a failed worker (a counted restart), before any
progress deadline could pass. A thawed job may likewise crash once (the chief's service can
see a stale heartbeat first); either way it moves again, which is what clears the condition."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

import pytest

from devcluster.realnode import trainer_pid
from tests.images.conftest import Image
from tests.network import TINY_ARGS
from tests.operator.harness import OperatorProcess
from tests.operator.jobs import JobBuilder
from tests.polling import eventually
from tests.real_node import NODE_SELECTOR, TOLERATION, host_dir

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

DEADLINE = 30  # the CRD's minimum progressDeadlineSeconds
PROGRESS_INTERVAL = 2  # the operator's --progress-interval here
MAX_STEPS = 600  # the tests' network runs ~15 steps/s: enough to be moving at each freeze


def freeze(job: str) -> list[int]:
    """SIGSTOP both ranks' trainer processes; returns their pids. A process found while its
    attempt is being torn down may be gone before the signal: look again (thawing any rank
    already stopped) until both of one live attempt are stopped."""

    def stop_both() -> list[int] | None:
        pids = [trainer_pid(job, rank) for rank in (0, 1)]
        if None in pids:
            return None
        stopped = []
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        except ProcessLookupError:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            return None
        return pids

    return eventually(stop_both, timeout=60, interval=0.5, what="both ranks stopped")


@pytest.mark.usefixtures("real_node")
def test_sigstopped_trainers_are_stalled_then_move_again_then_restart(
    cluster, jobs, tmp_path, trainer_image: Image
):
    operator = OperatorProcess(
        cluster, jobs.namespace, tmp_path, "--progress-interval", str(PROGRESS_INTERVAL)
    )
    operator.start()
    checkpoints = host_dir("densenet-checkpoints-", writable=True)
    job = (
        JobBuilder("stall")
        .replicas(2)
        .set("spec.image", trainer_image.name)
        .set("spec.scheduling", {"nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]})
        .set("spec.template.resources", {"requests": {"cpu": "100m", "memory": "1Gi"}})
        .set("spec.dataset", {"format": "synthetic", "numClasses": 10, "imageSize": 32})
        .set(
            "spec.training",
            {
                "batchSize": 8,
                "maxSteps": MAX_STEPS,
                "iterationsPerLoop": 5,
                "displayEvery": 5,
                "extraArgs": TINY_ARGS,
            },
        )
        .set(
            "spec.checkpoint",
            {"everySteps": 50, "volume": {"hostPath": {"path": str(checkpoints)}}},
        )
        .set("spec.runPolicy.progressDeadlineSeconds", DEADLINE)
    )
    try:
        jobs.create(job.build())
        name = "stall"

        def stalled() -> dict | None:
            found = jobs.condition(name, "Stalled")
            return found if found and found["status"] == "True" else None

        def step() -> int:
            return (jobs.status(name).get("progress") or {}).get("step", 0)

        # Moving (TF's start-up may exceed this short deadline: a report, which clears).
        first = eventually(lambda: step() > 0 and not stalled() and step(), timeout=180,
                           what="a first step, not stalled")  # fmt: skip

        # 1. SIGSTOP both ranks: Stalled, with the last step, within the deadline + one read.
        frozen = freeze(name)
        stopped = time.monotonic()
        condition = eventually(stalled, timeout=DEADLINE + 60, interval=0.5, what="Stalled")
        noticed = time.monotonic() - stopped
        assert condition["reason"] == "NoProgress", condition
        assert condition["message"].startswith("no new step since "), condition
        last = step()
        assert last >= first and f"the last was {last}" in condition["message"], condition
        assert noticed <= DEADLINE + 2 * PROGRESS_INTERVAL + 10, noticed
        assert jobs.status(name)["phase"] == "Running"  # stalledAction None: report only
        assert operator.sample("densenet_operator_jobs_stalled") == 1

        # 2. SIGCONT: it moves again (maybe after one restart, see above); the condition clears.
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        cleared = eventually(
            lambda: (c := jobs.condition(name, "Stalled")) and c["status"] == "False" and c,
            timeout=240,
            what="Stalled cleared",
        )
        # Progressing: a new step; NotRunning: the thawed job crashed once and is restarting.
        assert cleared["reason"] in ("Progressing", "NotRunning"), cleared
        eventually(lambda: step() > last, timeout=240, what="a step past the frozen one")
        restarts = jobs.status(name).get("restarts", 0)

        # 3. stalledAction Restart, then SIGSTOP again: a counted restart, and the job ends
        # Succeeded (the action is set back to None once it has acted: TF's start-up on 2
        # cores may take longer than this 30 s deadline, which would restart it again).
        jobs.patch(name, {"spec": {"runPolicy": {"stalledAction": "Restart"}}})
        # A new step after the patch: the trainers are live (not an attempt being torn down).
        moving_from = step()
        eventually(lambda: step() > moving_from, timeout=240, what="the job moving")
        freeze(name)
        # The restart for the stall (its cause stays in the condition once recovered). A crash
        # of the thawed job (above) may be counted after `restarts` was read: count from there.
        eventually(
            lambda: (
                "stalled: no new step since"
                in (jobs.condition(name, "Restarting") or {}).get("message", "")
            ),
            timeout=DEADLINE + 60,
            what="a restart for the stall",
        )
        jobs.patch(name, {"spec": {"runPolicy": {"stalledAction": "None"}}})
        status = jobs.wait_phase(name, "Succeeded", timeout=300)
        assert status["restarts"] >= restarts + 1, status
        assert status["progress"]["step"] == MAX_STEPS, status["progress"]
        print(f"\nStalled noticed {noticed:.1f}s after SIGSTOP (deadline {DEADLINE}s)")
    finally:
        operator.stop()
        shutil.rmtree(checkpoints)
