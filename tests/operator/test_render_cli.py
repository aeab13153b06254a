"""`densenet-operator render`: prints every manifest, refuses bad files with one line per
problem naming the field, exit code 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.operator.jobs import EXAMPLES, JobBuilder


def render(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "densenet_operator.cli", "render", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_yaml_and_json_outputs_hold_the_same_objects():
    example = str(EXAMPLES[0])
    as_yaml = list(yaml.safe_load_all(render("-f", example).stdout))
    as_json = json.loads(render("-f", example, "-o", "json").stdout)
    assert as_json["kind"] == "List"
    assert as_json["items"] == as_yaml
    assert len(as_yaml) >= 2


def test_namespace_and_trainer_image_flags(tmp_path: Path):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(JobBuilder("one").build()))
    result = render("-f", str(job), "-n", "team-a", "--trainer-image", "reg/trainer:9")
    pod = next(o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Pod")
    assert pod["metadata"]["namespace"] == "team-a"
    assert pod["spec"]["containers"][0]["image"] == "reg/trainer:9"


def test_stdin_and_several_jobs_in_one_file():
    docs = [JobBuilder("a").build(), JobBuilder("b").replicas(2).build()]
    result = render("-f", "-", stdin=yaml.safe_dump_all(docs))
    pods = [o["metadata"]["name"] for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Pod"]
    assert pods == ["a-worker-0", "b-worker-0", "b-worker-1"]


def test_numbers_in_strings_stay_strings_for_kubectl():
    # kubectl reads YAML 1.2, where an unquoted 1e5 is a number: render must quote it.
    job = JobBuilder().set("spec.training.extraArgs", ["--foo", "1e5"]).build()
    result = render("-f", "-", stdin=json.dumps(job))  # JSON is YAML, and "1e5" a string
    assert '- "1e5"' in result.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            yaml.safe_dump(JobBuilder("bad").replicas(0).set("spec.mode", "fit").build()),
            [
                "bad: spec.mode: 'fit' is not one of ['train', 'evaluate', 'train_and_evaluate']",
                "bad: spec.replicas: 0 is less than the minimum of 1",
            ],
        ),
        ("spec: [unclosed", ["line 1: not valid YAML"]),
        ("", ["holds no DenseNetTrainingJob"]),
        (
            yaml.safe_dump({"kind": "Pod"}),
            [
                "yaml: apiVersion: must be densenet.dev/v1alpha1",
                "yaml: kind: must be DenseNetTrainingJob",
                "yaml: metadata.name: is required; name the job",
            ],
        ),
    ],
)
def test_bad_files_get_one_line_per_problem_and_exit_2(tmp_path: Path, content, expected):
    job = tmp_path / "job.yaml"
    job.write_text(content)
    result = render("-f", str(job))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(expected)
    for line, wanted in zip(lines, expected, strict=True):
        assert line.startswith(f"densenet-operator: error: {job}")
        assert wanted in line
    assert "Traceback" not in result.stderr


def test_missing_file_and_bad_flags_exit_2():
    missing = render("-f", "/nonexistent/job.yaml")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "densenet-operator: error: /nonexistent/job.yaml: "
        "cannot read it (No such file or directory)"
    )
    bad_flag = render("-f", str(EXAMPLES[0]), "-o", "xml")
    assert bad_flag.returncode == 2
    assert "invalid choice: 'xml'" in bad_flag.stderr


JOB_HEAD = """apiVersion: densenet.dev/v1alpha1
kind: DenseNetTrainingJob
metadata: {name: big}
spec:
  dataset: {format: synthetic}
"""


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ("maxSteps: 1e20", "spec.training.maxSteps: 1e+20 is not of type 'integer'"),
        ("maxSteps: 100000000000000000000", "spec.training.maxSteps: 1e+20 is not of type"),
        ("maxSteps: 1000000000001", "spec.training.maxSteps: 1000000000001 is greater than"),
        ("lr: .inf", "spec.training.lr: inf is not a number JSON can carry"),
    ],
)
def test_a_bad_number_is_one_line_and_exit_2(tmp_path: Path, training: str, expected: str):
    job = tmp_path / "job.yaml"
    job.write_text(JOB_HEAD + f"  training: {{{training}}}\n")
    result = render("-f", str(job))
    assert result.returncode == 2
    assert result.stderr.startswith(f"densenet-operator: error: {job}: big: {expected}")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_the_file_is_read_as_kubectl_reads_it(tmp_path: Path):
    """1e-3 is a number and y a boolean to kubectl (go-yaml), whatever PyYAML's YAML 1.1 says."""
    job = tmp_path / "job.yaml"
    job.write_text(JOB_HEAD + "  training: {lr: 1e-3, maxSteps: 5.0}\n")
    result = render("-f", str(job))
    assert result.returncode == 0, result.stderr
    (pod,) = [o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Pod"]
    command = pod["spec"]["containers"][0]["command"]
    assert command[command.index("--lr") + 1] == "0.001"
    assert command[command.index("--max_train_steps") + 1] == "5"
    job.write_text(JOB_HEAD + "  scheduling: {nodeSelector: {gpu: y}}\n")
    refused = render("-f", str(job))
    assert refused.returncode == 2
    assert "spec.scheduling.nodeSelector.gpu: True is not of type 'string'" in refused.stderr
