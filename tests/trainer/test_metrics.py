"""The Prometheus endpoint during training: parseable, named by the rules, promtool-clean."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from trainer_cli import free_port, start, wait_for_step

from densenet_trainer import env
from tests.network import TINY_ARGS

JOB_ENV = {env.JOB_NAME: "digits", env.JOB_NAMESPACE: "team-a", env.RANK: "0"}


def _promtool() -> str | None:
    path = shutil.which("promtool")
    if path is None and os.environ.get("CI") == "true":
        pytest.fail("promtool is missing under CI: install Debian's 'prometheus' package")
    return path


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


@pytest.mark.slow
def test_scrape_during_training(tmp_path: Path) -> None:
    promtool = _promtool()
    port = free_port()
    out = tmp_path / "train.log"
    proc = start(
        "--synthetic",
        "--image_size",
        "32",
        "--num_classes",
        "10",
        "--batch_size",
        "4",
        "--max_train_steps",
        "500",
        "--display_every",
        "1",
        "--save_checkpoints_steps",
        "2",
        *TINY_ARGS,
        "--export",
        "false",
        "--log_dir",
        str(tmp_path / "run"),
        "--metrics_port",
        str(port),
        "--metrics_address",
        "127.0.0.1",
        output=out,
        extra_env=JOB_ENV,
    )
    started = time.time()
    try:
        wait_for_step(out, 3, proc, timeout=240)
        text = _scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    families = {f.name: f for f in text_string_to_metric_families(text)}
    # prometheus_client's parser strips _total from counter family names.
    expected = {
        "densenet_images_processed": "counter",
        "densenet_images_per_second": "gauge",
        "densenet_loss": "gauge",
        "densenet_reg_loss": "gauge",
        "densenet_total_loss": "gauge",
        "densenet_learning_rate": "gauge",
        "densenet_global_step": "gauge",
        "densenet_epoch": "gauge",
        "densenet_max_steps": "gauge",
        "densenet_step_duration_seconds": "histogram",
        "densenet_checkpoint_fallbacks": "counter",
        "densenet_eval_top1_ratio": "gauge",
        "densenet_eval_top5_ratio": "gauge",
        "densenet_trainer_info": "gauge",
        "densenet_resumed_step": "gauge",
        "densenet_checkpoint_step": "gauge",
        "densenet_checkpoint_timestamp_seconds": "gauge",
        "densenet_first_step_timestamp_seconds": "gauge",
    }
    assert {name: families[name].type for name in expected if name in families} == expected
    assert set(families) == set(expected), "only densenet_ metrics, one prefix"
    assert "densenet_images_processed_total{" in text

    samples = {s.name: s for f in families.values() for s in f.samples}
    step = samples["densenet_global_step"]
    assert step.value >= 3
    assert samples["densenet_max_steps"].value == 500
    assert step.labels == {"job_name": "digits", "job_namespace": "team-a", "rank": "0"}
    assert samples["densenet_images_processed_total"].value >= 3 * 4
    assert samples["densenet_step_duration_seconds_count"].value >= 3
    assert samples["densenet_checkpoint_fallbacks_total"].value == 0  # a fresh directory
    assert samples["densenet_resumed_step"].value == 0  # started fresh
    # Checkpoints every 2 steps: the newest is at an even step no later than the global step.
    checkpointed = samples["densenet_checkpoint_step"].value
    assert checkpointed >= 2 and checkpointed % 2 == 0 and checkpointed <= step.value
    assert started <= samples["densenet_checkpoint_timestamp_seconds"].value <= time.time()
    first = samples["densenet_first_step_timestamp_seconds"].value
    assert started <= first <= samples["densenet_checkpoint_timestamp_seconds"].value
    info = samples["densenet_trainer_info"].labels
    assert info["accelerator"] == "cpu" and info["world_size"] == "1"
    assert info["tensorflow_version"].startswith("2.")
    for sample in (s for f in families.values() for s in f.samples):
        assert set(sample.labels) - {"le", "accelerator", "tensorflow_version", "world_size"} == {
            "job_name",
            "job_namespace",
            "rank",
        }, sample

    assert promtool is not None, "promtool missing: make system-packages (Debian's prometheus)"
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr
