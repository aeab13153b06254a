"""Preemption through a real Kueue that loses no step: a real 2-worker training job of low
priority, in containers from `densenet-trainer:dev` on the real node, runs admitted by Kueue; a
high-priority job needs the quota; Kueue stops the low job's pod group, every trainer
checkpoints on SIGTERM at one step and exits 75; the operator counts a preemption (not a
restart), the job waits Queued with its next pods gated, and once the high job has succeeded it
is admitted again, resumes at exactly the step it stopped at, and ends Succeeded at the same
final step as an uninterrupted run, restarts 0, preemptions 1, no step lost."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from devdata.digits import write_dataset
from tests.e2e.test_recovery import ChiefLog, digits_job
from tests.operator.harness import OperatorProcess, on_node
from tests.operator.kueue_setup import GANG, WITH_KUEUE, gated, in_queue, queued
from tests.polling import eventually
from tests.real_node import TRAINER_IMAGE, host_dir

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

MAX_STEPS = 120  # the preemption lands near step 30 (asked for at 20) on 2 cores
NEVER = 100_000  # no periodic checkpoint: only the one written on SIGTERM can resume exactly


def low_job(data: Path, checkpoints: Path, priority: str) -> dict:
    job = digits_job(data, checkpoints, TRAINER_IMAGE)
    job["metadata"]["name"] = "low"
    job["spec"]["training"]["maxSteps"] = MAX_STEPS
    job["spec"]["checkpoint"]["everySteps"] = NEVER
    job["spec"]["scheduling"].update(priorityClassName=priority, gang=dict(GANG))
    return job


@pytest.mark.usefixtures("real_node")
def test_a_preempted_training_resumes_at_its_exact_step_and_finishes(
    cluster, jobs, quota, priorities, *, tmp_path, fake_dir
):
    quota(2, preempt=True)
    data = host_dir("densenet-digits-")
    checkpoints = host_dir("densenet-checkpoints-", writable=True)
    write_dataset(data)
    operator = OperatorProcess(
        cluster, jobs.namespace, tmp_path, "--progress-interval", "2", chart_values=WITH_KUEUE
    ).start()
    try:
        jobs.create(low_job(data, checkpoints, priorities.low))
        log = ChiefLog(checkpoints / "low" / "densenet121.log")
        log.wait_step(20)

        high = in_queue(on_node("high", fake_dir, FAKE_SLEEP=10))
        jobs.create(high.set("spec.scheduling.priorityClassName", priorities.high).build())
        arrived = time.monotonic()
        stopped_at = eventually(
            lambda: (log.preemptions() or [None])[-1], timeout=90, what="the preemption checkpoint"
        )
        assert stopped_at < MAX_STEPS, log.text()[-2000:]
        eventually(lambda: queued(jobs, "low"), timeout=60, what="low Queued after its eviction")
        status = jobs.status("low")
        assert (status["restarts"], status["preemptions"]) == (0, 1), status
        assert "was stopped by Kueue" in jobs.condition("low", "Restarting")["message"]
        assert all(gated(p) for p in jobs.pods("low")), "the next attempt waits for admission"

        jobs.wait_phase("high", "Succeeded", timeout=120)
        high_done = time.monotonic()
        assert log.wait_resume(1) == stopped_at  # exactly the step it stopped at
        log.wait_step(stopped_at + 1)
        resumed_after = time.monotonic() - high_done

        status = jobs.wait_phase("low", "Succeeded", timeout=600)
        assert (status["restarts"], status["preemptions"]) == (0, 1), status
        assert log.last_step() == MAX_STEPS  # as many steps as an uninterrupted run
        assert status["goodput"]["stepsLost"] == 0, status["goodput"]
        print(
            f"\npreempted at step {stopped_at}, {high_done - arrived:.1f}s from the high job's "
            f"arrival to its end; first step {resumed_after:.1f}s after it ended"
        )
    finally:
        operator.stop()
        shutil.rmtree(data)
        shutil.rmtree(checkpoints)
