"""Job spec in, manifests out: every child object of a DenseNetTrainingJob. No I/O, no API.

The child objects' YAML lives in Jinja2 templates (``templates/``); the computed parts (rank
tables, TF_CONFIG, resources, the command line) are built here and by the accelerator modules,
and every value reaches the YAML through ``tojson``, so no user text can become YAML syntax:
here ``tojson`` leaves a slot marker in the text and keeps a JSON copy of the value, which
goes into the parsed object in the marker's place. The YAML parser then reads only the
templates' own small skeleton, not the values (before, it parsed every value as JSON-in-YAML:
80 % of the render time).
The operator and ``densenet-operator render`` call the same :func:`render`.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
import yaml

from densenet_contract import env as contract_env
from densenet_contract import image, ports

from .. import kueue
from ..job import CONTAINER, Job
from .accelerators import REGISTRY, Accelerator, PodParts
from .accelerators.base import env_var
from .trainer_args import command

VOLCANO = "volcano"
VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
KUEUE_QUEUE_LABEL = kueue.QUEUE_LABEL
KUEUE_GROUP_LABEL = kueue.GROUP_LABEL
KUEUE_COUNT_ANNOTATION = kueue.COUNT_ANNOTATION
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The writable HOME of a read-only trainer container (the CRD reserves the volume name).
SCRATCH_VOLUME = "scratch"
# The API server's limit on a ConfigMap's data (keys and values together).
CONFIG_MAP_LIMIT = 1024 * 1024
# The label the API server puts on every namespace: its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# libyaml's parser when PyYAML has it.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# What ``tojson`` writes into the YAML: the index of the value in the render's slots.
_SLOT = re.compile(r"\x00slot(\d+)")


class RenderError(ValueError):
    """The renderer produced something invalid: a bug, never a user error."""


@dataclass(frozen=True)
class NetworkAccess:
    """A NetworkPolicy per job (``run --network-policy``): its pods reach each other on
    every port; its metrics ports are reachable from these namespaces only."""

    metrics_from: tuple[str, ...] = ()


@dataclass
class Manifests:
    """Every child object of one attempt of a job, in creation order by kind."""

    config_maps: list[dict[str, Any]] = field(default_factory=list)
    pod_groups: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    network_policies: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)

    def objects(self) -> list[dict[str, Any]]:
        """In creation order: a pod never starts before the policy that guards it."""
        return [
            *self.config_maps,
            *self.pod_groups,
            *self.services,
            *self.network_policies,
            *self.pods,
        ]


@jinja2.pass_context
def _to_slot(context: jinja2.runtime.Context, value: Any) -> str:
    """``tojson``: a copy of ``value`` as JSON would carry it, kept in the render's slots; the
    text gets a marker (a YAML double-quoted string) that :func:`_fill` replaces."""
    slots: list[Any] = context["_slots"]
    slots.append(json.loads(json.dumps(value)))
    return f'"\\0slot{len(slots) - 1}"'


def _fill(node: Any, slots: list[Any]) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, slots) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, slots) for value in node]
    if isinstance(node, str) and (marker := _SLOT.fullmatch(node)):
        return slots[int(marker[1])]
    return node


@functools.cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("densenet_operator.render", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML; every value is emitted through tojson
        keep_trailing_newline=True,
    )
    environment.filters["tojson"] = _to_slot
    return environment


def _render(template_: str, kind_: str, name_: str, **context: Any) -> dict[str, Any]:
    """Render one template and check that it parsed into the object it should be."""
    slots: list[Any] = []
    text = _templates().get_template(template_).render(**context, _slots=slots)
    try:
        obj = _fill(yaml.load(text, Loader=_YAML_LOADER), slots)
    except yaml.YAMLError as exc:
        raise RenderError(f"{template_} rendered invalid YAML: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("kind") != kind_ or obj["metadata"]["name"] != name_:
        raise RenderError(f"{template_} did not render the {kind_} {name_!r}")
    return obj


def accelerator_of(job: Job) -> Accelerator:
    return REGISTRY[job.accelerator]


def _resources(job: Job, parts: PodParts) -> dict[str, dict[str, Any]]:
    """The template's resources with the accelerator's on top (extended resources and
    hugepages must have requests equal to limits)."""
    user = job.spec["template"]["resources"]
    requests = {**user.get("requests", {}), **parts.resources}
    limits = {**user.get("limits", {}), **parts.resources}
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _ports(job: Job, processes: int) -> list[dict[str, Any]]:
    base = job.metrics_port
    if base is None:
        return []
    return [
        {"name": ports.metrics_port_name(j), "containerPort": base + j, "protocol": "TCP"}
        for j in range(processes)
    ]


def _volumes(job: Job, parts: PodParts) -> tuple[list[dict], list[dict]]:
    spec = job.spec
    volumes: list[dict] = []
    mounts: list[dict] = []
    dataset = spec["dataset"]
    if "volume" in dataset:
        volumes.append({"name": "dataset", **dataset["volume"]})
        mounts.append({"name": "dataset", "mountPath": dataset["path"], "readOnly": True})
    checkpoint = spec["checkpoint"]
    volumes.append({"name": "checkpoints", **checkpoint.get("volume", {"emptyDir": {}})})
    mounts.append({"name": "checkpoints", "mountPath": checkpoint["path"]})
    template = spec["template"]
    mounted = {posixpath.normpath(m["mountPath"]) for m in [*mounts, *template["volumeMounts"]]}
    if image.TRAINER_HOME not in mounted:
        volumes.append({"name": SCRATCH_VOLUME, "emptyDir": {}})
        mounts.append({"name": SCRATCH_VOLUME, "mountPath": image.TRAINER_HOME})
    return (
        [*volumes, *parts.volumes, *template["volumes"]],
        [*mounts, *parts.volume_mounts, *template["volumeMounts"]],
    )


def _scheduling(job: Job, attempt: int) -> tuple[dict[str, str], dict[str, str], str]:
    """Gang scheduling's labels, annotations and scheduler name."""
    scheduling = job.spec["scheduling"]
    gang = scheduling["gang"]
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    scheduler = scheduling["schedulerName"]
    if gang["enabled"] and gang["provider"] == VOLCANO:
        annotations[VOLCANO_GROUP_ANNOTATION] = job.name
        scheduler = scheduler or VOLCANO
    elif gang["enabled"]:
        labels[KUEUE_QUEUE_LABEL] = gang["queue"]
        labels[KUEUE_GROUP_LABEL] = kueue.group_name(job.name, attempt)
        annotations[KUEUE_COUNT_ANNOTATION] = str(job.replicas)
    return labels, annotations, scheduler


def _pod_security(job: Job) -> dict[str, Any]:
    """Pod Security "restricted" for every kind: the image's non-root user unless the job names
    another (never root: the CRD's minimum is 1), volumes given the trainer's group so a
    root-owned checkpoint volume is writable, and the runtime's default seccomp profile."""
    user = job.spec["template"]["securityContext"]
    group = user.get("runAsGroup", image.TRAINER_GID)
    context: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": user.get("runAsUser", image.TRAINER_UID),
        "runAsGroup": group,
        "fsGroup": user.get("fsGroup", group),
        # Ownership is changed only when the volume's root does not match yet: a large
        # checkpoint or dataset volume is not walked again at every pod start.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if user.get("supplementalGroups"):
        context["supplementalGroups"] = user["supplementalGroups"]
    return context


def _container_security(parts: PodParts) -> dict[str, Any]:
    if parts.privileged:
        # The API server refuses allowPrivilegeEscalation: false next to privileged: true.
        return {
            "privileged": True,
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": parts.add_capabilities},
        }
    capabilities: dict[str, list[str]] = {"drop": ["ALL"]}
    if parts.add_capabilities:
        capabilities["add"] = parts.add_capabilities
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": capabilities,
    }


def render_pod(job: Job, index: int, image: str, attempt: int = 0) -> dict[str, Any]:
    accelerator = accelerator_of(job)
    processes = accelerator.processes_per_pod(job)
    parts = accelerator.pod_parts(job, index)
    spec = job.spec
    template = spec["template"]
    scheduling = spec["scheduling"]
    gang_labels, gang_annotations, scheduler = _scheduling(job, attempt)
    volumes, mounts = _volumes(job, parts)
    env = [
        env_var(contract_env.JOB_NAME, job.name),
        env_var(contract_env.JOB_NAMESPACE, job.namespace),
        env_var(contract_env.JOB_IDENTITY, job.identity),
        env_var(contract_env.RANK, index * processes),
        *parts.env,
        *template["env"],
    ]
    name = job.pod_name(index)
    return _render(
        "pod.yaml.j2",
        "Pod",
        name,
        pod_name=name,
        namespace=job.namespace,
        service_name=job.service_name,
        labels={**template["metadata"]["labels"], **gang_labels, **job.labels(index, attempt)},
        annotations={
            **template["metadata"]["annotations"],
            **gang_annotations,
            **parts.annotations,
        },
        automount_token=template["automountServiceAccountToken"],
        service_account=template["serviceAccountName"],
        scheduler_name=scheduler,
        priority_class=scheduling["priorityClassName"],
        node_name=parts.node_name,
        node_selector=scheduling["nodeSelector"],
        tolerations=scheduling["tolerations"],
        affinity=scheduling["affinity"],
        host_ipc=parts.host_ipc,
        grace_seconds=spec["checkpoint"]["terminationGracePeriodSeconds"],
        pod_security=_pod_security(job),
        container=CONTAINER,
        image=spec["image"] or image,
        command=command(job, accelerator.trainer_device, processes, accelerator.launcher),
        env=env,
        ports=_ports(job, processes),
        resources=_resources(job, parts),
        volume_mounts=mounts,
        container_security=_container_security(parts),
        volumes=volumes,
    )


def render_service(job: Job) -> dict[str, Any]:
    port = job.metrics_port
    service_ports = (
        [{"name": ports.METRICS_PORT_NAME, "port": port, "targetPort": port}] if port else []
    )
    return _render(
        "service.yaml.j2",
        "Service",
        job.service_name,
        service_name=job.service_name,
        namespace=job.namespace,
        labels=job.labels(),
        selector=job.selector_labels(),
        ports=service_ports,
    )


def render_network_policy(job: Job, access: NetworkAccess) -> dict[str, Any]:
    selector = job.selector_labels()
    ingress: list[dict[str, Any]] = [{"from": [{"podSelector": {"matchLabels": selector}}]}]
    if job.metrics_port is not None and access.metrics_from:
        processes = accelerator_of(job).processes_per_pod(job)
        ingress.append(
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
                    for namespace in access.metrics_from
                ],
                "ports": [
                    {"protocol": "TCP", "port": ports.metrics_port_name(j)}
                    for j in range(processes)
                ],
            }
        )
    return _render(
        "networkpolicy.yaml.j2",
        "NetworkPolicy",
        job.name,
        name=job.name,
        namespace=job.namespace,
        labels=job.labels(),
        selector=selector,
        ingress=ingress,
    )


def render_config_maps(job: Job) -> list[dict[str, Any]]:
    return [
        _render(
            "configmap.yaml.j2",
            "ConfigMap",
            cm.name,
            name=cm.name,
            namespace=job.namespace,
            labels=job.labels(),
            data=cm.data,
            immutable=cm.immutable,
        )
        for cm in accelerator_of(job).config_maps(job)
    ]


def render_pod_groups(job: Job) -> list[dict[str, Any]]:
    gang = job.spec["scheduling"]["gang"]
    if not (gang["enabled"] and gang["provider"] == VOLCANO):
        return []
    return [
        _render(
            "podgroup.yaml.j2",
            "PodGroup",
            job.name,
            name=job.name,
            namespace=job.namespace,
            labels=job.labels(),
            min_member=job.replicas,
            queue=gang["queue"],
        )
    ]


def _check(manifests: Manifests, job: Job) -> None:
    """The output's invariants: valid DNS-label names, one pod per replica, distinct names."""
    names = set()
    for obj in manifests.objects():
        key = (obj["kind"], obj["metadata"]["name"])
        if key in names:
            raise RenderError(f"{key[0]} {key[1]!r} rendered twice")
        names.add(key)
        if obj["metadata"]["namespace"] != job.namespace:
            raise RenderError(f"{key[0]} {key[1]!r} is not in namespace {job.namespace}")
    for config_map in manifests.config_maps:
        size = sum(len(k) + len(v.encode()) for k, v in config_map["data"].items())
        if size > CONFIG_MAP_LIMIT:  # the CRD's limit on replicas x perPod keeps it under
            name = config_map["metadata"]["name"]
            raise RenderError(f"ConfigMap {name!r} holds {size} bytes, over {CONFIG_MAP_LIMIT}")
    for pod in manifests.pods:
        name = pod["metadata"]["name"]
        if len(name) > 63 or not DNS_LABEL.match(name):
            raise RenderError(f"pod name {name!r} is not a DNS label")
    if len(manifests.pods) != job.replicas:
        raise RenderError(f"rendered {len(manifests.pods)} pods for {job.replicas} replicas")


def render_shared(job: Job, network: NetworkAccess | None = None) -> Manifests:
    """The children every attempt shares: ConfigMaps, PodGroup, headless Service and, with
    ``network``, the job's NetworkPolicy."""
    return Manifests(
        config_maps=render_config_maps(job),
        pod_groups=render_pod_groups(job),
        services=[render_service(job)],
        network_policies=[render_network_policy(job, network)] if network else [],
    )


def render(
    job: Job, image: str, attempt: int = 0, network: NetworkAccess | None = None
) -> Manifests:
    """Every child object of attempt ``attempt`` of ``job`` (a defaulted spec)."""
    manifests = render_shared(job, network)
    manifests.pods = [render_pod(job, i, image, attempt) for i in range(job.replicas)]
    _check(manifests, job)
    return manifests
