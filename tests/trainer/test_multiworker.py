"""Two workers on loopback train one model with MultiWorkerMirroredStrategy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from trainer_cli import SMALL, free_port, start

DIGEST_RE = re.compile(r"^weights sha256: ([0-9a-f]{64}) step: (\d+)$", re.M)
CRASHED_RE = re.compile(r"StartAbort|tasks have crashed|stopped sending heartbeats")


@pytest.mark.slow
def test_two_workers_end_with_identical_weights_and_leave_together(tmp_path: Path) -> None:
    """The chief's export reads synchronised variables (an all-reduce): a worker that left
    first used to leave it in a collective that failed only after the heartbeat timeout
    (`StartAbort UNAVAILABLE ... The tasks have crashed`, ~30 s more)."""
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    procs, outputs = [], []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        outputs.append(tmp_path / f"worker-{index}.log")
        procs.append(
            start(
                "--synthetic",
                *SMALL,
                "--max_train_steps",
                "4",
                "--display_every",
                "2",
                "--export",
                "true",
                "--log_dir",
                str(tmp_path / "run"),
                output=outputs[-1],
                extra_env={"TF_CONFIG": json.dumps(tf_config)},
            )
        )
    try:
        codes = [proc.wait(timeout=360) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    texts = [out.read_text() for out in outputs]
    assert codes == [0, 0], texts
    digests = [DIGEST_RE.search(text) for text in texts]
    assert all(digests), texts
    assert digests[0].group(2) == digests[1].group(2) == "4"
    assert digests[0].group(1) == digests[1].group(1), "replicas diverged"
    assert (tmp_path / "run" / "ckpt-4.index").exists()
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").exists()
    for text in texts:
        assert not CRASHED_RE.search(text), text
    assert not list((tmp_path / "run").glob("*worker*")), "non-chief left files behind"
