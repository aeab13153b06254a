"""Safe on a shared cluster: every trainer pod the operator renders for cpu, nvidia and ascend
passes Pod Security "restricted" on the real API server, gaudi's pods are refused there (and by
"baseline") for hostIPC, and each job's checkpoints belong to it: its own directory, its
identity in the environment, a grace period sized for a checkpoint.

Expected values are written by hand (uid 10001 is the trainer image's USER)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from densenet_operator import schema
from densenet_operator.job import Job
from densenet_operator.render import render
from tests.operator.jobs import EXAMPLES, IMAGE, JobBuilder
from tests.polling import eventually

MEMORY = "spec.template.resources.requests.memory"
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
SCRATCH = ({"name": "scratch", "emptyDir": {}}, {"name": "scratch", "mountPath": "/tmp"})
# Pod Security's names for the checks a pod can fail (k8s.io/pod-security-admission/policy).
CHECK = re.compile(r"(?:^|\), )([a-zA-Z][-a-zA-Z ]*?) \(")


def pods_of(builder: JobBuilder, namespace: str = "ns1") -> list[dict[str, Any]]:
    job = Job.from_object(schema.apply(builder.build()), namespace)
    return render(job, IMAGE).pods


def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["spec"]["containers"]
    return only


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(pod)["env"]}


def flag(pod: dict[str, Any], name: str) -> str:
    command = container(pod)["command"]
    return command[command.index(name) + 1]


KINDS: dict[str, Callable[[], JobBuilder]] = {
    "cpu": lambda: JobBuilder("j").replicas(2),
    "nvidia": lambda: JobBuilder("j").accelerator("nvidia", 8).replicas(2),
    "ascend": lambda: JobBuilder("j").accelerator("ascend", 8).replicas(2),
    "gaudi": lambda: JobBuilder("j").accelerator("gaudi", 8).replicas(2).set(MEMORY, "1Gi"),
}


# --- the renderers (no cluster) ---


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_runs_non_root_read_only_with_a_writable_home(kind):
    for pod in pods_of(KINDS[kind]()):
        assert pod["spec"]["securityContext"] == RESTRICTED_POD
        security = container(pod)["securityContext"]
        if kind == "gaudi":  # Habana's runtime needs SYS_NICE, which restricted forbids
            assert security == {
                **RESTRICTED_CONTAINER,
                "capabilities": {"drop": ["ALL"], "add": ["SYS_NICE"]},
            }
            assert pod["spec"]["hostIPC"] is True
        else:
            assert security == RESTRICTED_CONTAINER
            assert "hostIPC" not in pod["spec"]
        assert SCRATCH[0] in pod["spec"]["volumes"]
        assert SCRATCH[1] in container(pod)["volumeMounts"]


def test_gaudi_host_devices_keep_the_user_and_read_only_root_but_are_privileged():
    builder = KINDS["gaudi"]().set("spec.gaudi.mode", "hostDevices")
    (pod, _) = pods_of(builder)
    assert pod["spec"]["securityContext"] == RESTRICTED_POD
    assert container(pod)["securityContext"] == {
        "privileged": True,
        "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["SYS_NICE"]},
    }


def test_the_jobs_user_groups_and_fs_group_replace_the_images():
    builder = KINDS["ascend"]().set(
        "spec.template.securityContext",
        {"runAsUser": 2000, "runAsGroup": 3000, "supplementalGroups": [1000]},
    )
    pod = pods_of(builder)[0]
    assert pod["spec"]["securityContext"] == {
        **RESTRICTED_POD,
        "runAsUser": 2000,
        "runAsGroup": 3000,
        "fsGroup": 3000,  # the volumes follow the trainer's group unless told otherwise
        "supplementalGroups": [1000],
    }
    builder.set("spec.template.securityContext", {"fsGroup": 4000})
    assert pods_of(builder)[0]["spec"]["securityContext"] == {**RESTRICTED_POD, "fsGroup": 4000}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spec.template.securityContext.runAsUser", 0),
        ("spec.template.securityContext.runAsGroup", 0),
        ("spec.template.securityContext.fsGroup", 0),
        ("spec.template.securityContext.supplementalGroups", [1000, 0]),
        ("spec.checkpoint.terminationGracePeriodSeconds", 0),
    ],
)
def test_root_and_a_zero_grace_period_are_refused_offline_naming_the_field(field, value):
    with pytest.raises(schema.InvalidJobError) as refused:
        schema.apply(JobBuilder().set(field, value).build())
    (error,) = refused.value.errors
    assert error.field.startswith(field), error


def test_a_job_mounting_its_own_tmp_gets_no_scratch_volume():
    own = JobBuilder().set(
        "spec.template.volumes", [{"name": "t", "emptyDir": {"medium": "Memory"}}]
    )
    own.set("spec.template.volumeMounts", [{"name": "t", "mountPath": "/tmp/"}])
    at_tmp = JobBuilder().set("spec.checkpoint.path", "/tmp")
    for builder in (own, at_tmp):
        (pod,) = pods_of(builder)
        assert [m for m in container(pod)["volumeMounts"] if m["mountPath"].rstrip("/") == "/tmp"]
        assert "scratch" not in [v["name"] for v in pod["spec"]["volumes"]]


def test_each_job_writes_its_own_directory_and_knows_its_identity():
    pods = pods_of(KINDS["ascend"]().set("spec.checkpoint.path", "/ckpt/"), namespace="team-a")
    for pod in pods:
        assert flag(pod, "--log_dir") == "/ckpt/j"
        assert env_of(pod)["DENSENET_JOB_IDENTITY"] == "team-a/j"
        assert {"name": "checkpoints", "mountPath": "/ckpt/"} in container(pod)["volumeMounts"]
    shared = JobBuilder("k").set("spec.checkpoint", {"path": "/ckpt", "perJobDirectory": False})
    (pod,) = pods_of(shared)
    assert flag(pod, "--log_dir") == "/ckpt"
    assert env_of(pod)["DENSENET_JOB_IDENTITY"] == "ns1/k"


def test_paths_the_user_gives_to_read_from_are_not_rewritten():
    evaluate = JobBuilder("e").set("spec.mode", "evaluate")
    evaluate.set("spec.evaluate.checkpoint", "/checkpoints/train-job/ckpt-100")
    (pod,) = pods_of(evaluate)
    assert flag(pod, "--checkpoint_dir") == "/checkpoints/train-job/ckpt-100"
    assert flag(pod, "--log_dir") == "/checkpoints/e"
    warm = JobBuilder("w").set("spec.pretrained", "/checkpoints/densenet121.weights.h5")
    (pod,) = pods_of(warm)
    assert flag(pod, "--pretrained") == "/checkpoints/densenet121.weights.h5"


def test_the_grace_period_reaches_every_pod():
    for kind, builder in KINDS.items():
        assert {p["spec"]["terminationGracePeriodSeconds"] for p in pods_of(builder())} == {120}, (
            kind
        )
    longer = JobBuilder().set("spec.checkpoint.terminationGracePeriodSeconds", 900)
    assert pods_of(longer)[0]["spec"]["terminationGracePeriodSeconds"] == 900


# --- the real API server's Pod Security admission ---


@pytest.fixture
def level_namespace(core_v1: kube_client.CoreV1Api) -> Iterator[Callable[[str], str]]:
    """Namespaces enforcing a Pod Security level, each with its default ServiceAccount."""
    made: list[str] = []

    def make(level: str) -> str:
        name = f"pod-security-{level}-{uuid.uuid4().hex[:6]}"
        labels = {
            "densenet.dev/test": "true",
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
        core_v1.create_namespace({"metadata": {"name": name, "labels": labels}})
        made.append(name)

        def has_default_account() -> bool:
            try:
                return bool(core_v1.read_namespaced_service_account("default", name))
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise

        eventually(has_default_account, what=f"the default ServiceAccount of {name}")
        return name

    yield make
    for name in made:
        core_v1.delete_namespace(name, propagation_policy="Background")


def example_pods(job: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """What the operator creates for ``job`` in ``namespace`` (render's own functions)."""
    return render(Job.from_object(schema.apply(job), namespace), IMAGE).pods


def refusal(core_v1: kube_client.CoreV1Api, namespace: str, pod: dict[str, Any]) -> str | None:
    """None when the server accepts the pod (server-side dry run), else its message."""
    try:
        core_v1.create_namespaced_pod(namespace, pod, dry_run="All")
    except ApiException as exc:
        return yaml.safe_load(exc.body).get("message", exc.body)
    return None


def checks_failed(message: str) -> set[str]:
    """The check names in 'violates PodSecurity "restricted:latest": a (...), b (...)'."""
    assert 'violates PodSecurity "' in message, message
    return set(CHECK.findall(message.split('": ', 1)[1]))


EXAMPLE_JOBS = {p.name: yaml.safe_load(p.read_text()) for p in EXAMPLES}
NOT_GAUDI = [n for n, j in EXAMPLE_JOBS.items() if j["spec"]["accelerator"]["type"] != "gaudi"]
GAUDI = [n for n, j in EXAMPLE_JOBS.items() if j["spec"]["accelerator"]["type"] == "gaudi"]


def test_there_are_examples_of_every_kind():
    kinds = {j["spec"]["accelerator"]["type"] for j in EXAMPLE_JOBS.values()}
    assert kinds == {"cpu", "nvidia", "ascend", "gaudi"}
    assert GAUDI and len(NOT_GAUDI) >= 4


@pytest.mark.cluster
@pytest.mark.parametrize("example", NOT_GAUDI)
def test_examples_pods_pass_restricted_on_the_api_server(core_v1, level_namespace, example):
    restricted = level_namespace("restricted")
    job = EXAMPLE_JOBS[example]
    pods = example_pods(job, restricted)  # as written: the demo's data is on claims
    assert len(pods) == job["spec"].get("replicas", 1)
    for pod in pods:
        assert refusal(core_v1, restricted, pod) is None, pod["metadata"]["name"]


@pytest.mark.cluster
@pytest.mark.parametrize("example", GAUDI)
def test_gaudi_pods_need_the_privileged_level_for_host_ipc(core_v1, level_namespace, example):
    job = EXAMPLE_JOBS[example]
    for level, failed in (
        ("restricted", {"host namespaces", "unrestricted capabilities"}),
        ("baseline", {"host namespaces", "non-default capabilities"}),
    ):
        name = level_namespace(level)
        for pod in example_pods(job, name):
            message = refusal(core_v1, name, pod)
            assert message is not None, f"{level} accepted {pod['metadata']['name']}"
            assert "hostIPC=true" in message, message
            assert checks_failed(message) == failed, message
    privileged = level_namespace("privileged")
    for pod in example_pods(job, privileged):
        assert refusal(core_v1, privileged, pod) is None
