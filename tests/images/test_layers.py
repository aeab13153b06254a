"""The Dockerfiles' layer order: a change to the trainer's code rebuilds only the last layer of
the trainer image, never the locked one that holds TensorFlow."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import time
import uuid

from tests.images.conftest import REPO, Image


def checkout_copy(dest) -> None:
    """This checkout's files as git sees them (tracked and new, not ignored): a build context
    like a clean clone's, with the working tree's changes."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    archive = dest / "context.tar"
    with tarfile.open(archive, "w") as tar:
        for name in filter(None, files):
            if (REPO / name).exists():
                tar.add(REPO / name, arcname=name, recursive=False)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "repo", filter="tar")


def test_touching_a_trainer_file_rebuilds_only_the_last_layer(trainer_image: Image, tmp_path):
    checkout_copy(tmp_path)
    source = tmp_path / "repo" / "trainer" / "src" / "densenet_trainer" / "cli.py"
    source.write_text(
        source.read_text() + f"\n# touched by tests/images/test_layers.py: {uuid.uuid4()}\n"
    )
    base = trainer_image.inspect()["Config"]["Labels"]["org.opencontainers.image.base.name"]
    env = {
        **os.environ, "IMAGES": "trainer", "IMAGE_TAG": "layer-test", "BASE_IMAGE": base,
        "TMPDIR": str(tmp_path),
    }  # fmt: skip
    started = time.monotonic()
    build = subprocess.run(
        ["bash", "images/build.sh"], cwd=tmp_path / "repo", env=env,
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert build.returncode == 0, build.stderr[-3000:]
    rebuilt = Image(trainer_image.name.rsplit(":", 1)[0] + ":layer-test", trainer_image.docker)
    try:
        before = trainer_image.inspect()["RootFS"]["Layers"]
        after = rebuilt.inspect()["RootFS"]["Layers"]
        assert len(after) == len(before)
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) == 1, f"layers rebuilt: {changed} of {len(before)}"
        # BuildKit's log: the step that installs the lock (TensorFlow) came from the cache.
        log = (tmp_path / "densenet-trainer-build.log").read_text()
        (step,) = re.findall(
            r"^#(\d+) \[runtime [^\]]*\] RUN .*pip install .*trainer\.lock", log, re.M
        )
        assert re.search(rf"^#{step} CACHED$", log, re.M), log
        print(f"trainer image rebuilt after touching one trainer file in {seconds:.1f} s")
    finally:
        trainer_image.cli("rmi", rebuilt.name)
