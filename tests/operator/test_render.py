"""Golden tests of the pure renderers, one table per accelerator kind. Expected objects are
written by hand from the issue and REFERENCE.md, never produced by the code under test."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from densenet_operator.render import NetworkAccess, render
from tests.operator.jobs import IMAGE, JobBuilder, process_limit

MEMORY = "spec.template.resources.requests.memory"


def env_of(pod: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def container(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def test_cpu_pod_golden():
    job = JobBuilder("smoke").replicas(2).set("spec.training", {"maxSteps": 20, "lr": 0.1})
    pods = render(job.defaulted(), IMAGE, attempt=3).pods
    assert pods[1] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "smoke-worker-1",
            "namespace": "ns1",
            "labels": {
                "app.kubernetes.io/name": "densenet-trainer",
                "app.kubernetes.io/managed-by": "densenet-operator",
                "densenet.dev/job-name": "smoke",
                "densenet.dev/accelerator": "cpu",
                "densenet.dev/replica-index": "1",
                "densenet.dev/attempt": "3",
            },
            "annotations": {},
        },
        "spec": {
            "restartPolicy": "Never",
            "hostname": "smoke-worker-1",
            "subdomain": "smoke",
            "enableServiceLinks": False,
            "shareProcessNamespace": True,
            "terminationGracePeriodSeconds": 120,
            "automountServiceAccountToken": False,
            "nodeSelector": {},
            "tolerations": [],
            "affinity": {},
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "trainer",
                    "image": IMAGE,
                    "command": [
                        "densenet-train",
                        "--device",
                        "cpu",
                        "--mode",
                        "train",
                        "--synthetic",
                        "--lr",
                        "0.1",
                        "--max_train_steps",
                        "20",
                        "--log_dir",
                        "/checkpoints/smoke",
                        "--metrics_port",
                        "9410",
                    ],
                    "env": [
                        {"name": "DENSENET_JOB_NAME", "value": "smoke"},
                        {"name": "DENSENET_JOB_NAMESPACE", "value": "ns1"},
                        {"name": "DENSENET_JOB_IDENTITY", "value": "ns1/smoke"},
                        {"name": "DENSENET_RANK", "value": "1"},
                        {
                            "name": "DENSENET_TF_CLUSTER_FILE",
                            "value": "/etc/densenet/tf-cluster/cluster.json",
                        },
                        {"name": "DENSENET_TF_TASK_TYPE", "value": "worker"},
                        {"name": "DENSENET_TF_TASK_INDEX", "value": "1"},
                    ],
                    "ports": [{"name": "metrics", "containerPort": 9410, "protocol": "TCP"}],
                    "resources": {},
                    "volumeMounts": [
                        {"name": "checkpoints", "mountPath": "/checkpoints"},
                        {"name": "scratch", "mountPath": "/tmp"},
                        {
                            "name": "tf-cluster",
                            "mountPath": "/etc/densenet/tf-cluster",
                            "readOnly": True,
                        },
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            "volumes": [
                {"name": "checkpoints", "emptyDir": {}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "tf-cluster", "configMap": {"name": "smoke-tf-cluster"}},
            ],
        },
    }


def test_cpu_tf_cluster_config_map_golden():
    """TF_CONFIG's cluster, once per job: what every pod's TF_CONFIG used to carry."""
    (cm,) = render(JobBuilder("smoke").replicas(2).defaulted(), IMAGE).config_maps
    assert cm == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "smoke-tf-cluster",
            "namespace": "ns1",
            "labels": {
                "app.kubernetes.io/name": "densenet-trainer",
                "app.kubernetes.io/managed-by": "densenet-operator",
                "densenet.dev/job-name": "smoke",
                "densenet.dev/accelerator": "cpu",
            },
        },
        "immutable": True,
        "data": {
            "cluster.json": '{"worker":["smoke-worker-0.smoke.ns1.svc:2222",'
            '"smoke-worker-1.smoke.ns1.svc:2222"]}'
        },
    }


def tf_config_of(manifests, pod: dict) -> dict:
    """The TF_CONFIG a pod's first process assembles: the mounted ConfigMap's file and the
    pod's task (what tests/trainer and tests/contract check the trainer does)."""
    env = env_of(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    (mount,) = [m for m in container(pod)["volumeMounts"] if m["name"] == "tf-cluster"]
    config_map = volumes["tf-cluster"]["configMap"]["name"]
    (data,) = [c["data"] for c in manifests.config_maps if c["metadata"]["name"] == config_map]
    directory, key = env["DENSENET_TF_CLUSTER_FILE"].rsplit("/", 1)
    assert directory == mount["mountPath"]
    return {
        "cluster": json.loads(data[key]),
        "task": {"type": env["DENSENET_TF_TASK_TYPE"], "index": int(env["DENSENET_TF_TASK_INDEX"])},
    }


def env_shape(pod: dict) -> list[tuple[str, str]]:
    """A pod's environment with its numbers (index, rank) blanked out."""
    return [(e["name"], re.sub("[0-9]+", "N", e["value"])) for e in container(pod)["env"]]


@pytest.mark.parametrize(
    ("builder", "per_pod"),
    [
        (JobBuilder("c"), 1),
        (JobBuilder("n").accelerator("nvidia", 8), 1),
        (JobBuilder("g").accelerator("gaudi", 8).set(MEMORY, "1Gi"), 8),
    ],
)
def test_a_pods_environment_does_not_grow_with_the_job(builder, per_pod):
    """Whether a job has 2 pods or 500, each pod carries its task only: the worker list sits
    once in the ConfigMap (at 128x8 Gaudi it is ~196 KB with long names, too long for one
    environment string)."""
    shapes = {}
    for replicas in (2, 500):
        manifests = render(builder.replicas(replicas).defaulted(), IMAGE)
        last = manifests.pods[-1]
        shapes[replicas] = env_shape(last)
        tf_config = tf_config_of(manifests, last)
        assert tf_config["task"] == {"type": "worker", "index": (replicas - 1) * per_pod}
        assert len(tf_config["cluster"]["worker"]) == replicas * per_pod
        assert max(len(e["value"]) for e in container(last)["env"]) < 64
    assert shapes[2] == shapes[500]


def test_at_the_crds_limit_with_the_longest_names_every_object_fits():
    """The CRD allows 4096 trainer processes (replicas x perPod): with a 52-character job
    name and a 63-character namespace, the cluster ConfigMap stays under the API server's
    1 MiB and no environment value grows."""
    limit = process_limit()
    job = JobBuilder("j" * 52, "n" * 63).accelerator("gaudi", 8).replicas(limit // 8)
    manifests = render(job.set(MEMORY, "1Gi").defaulted(), IMAGE)
    (cm,) = manifests.config_maps
    size = sum(len(k) + len(v) for k, v in cm["data"].items())
    assert 700_000 < size < 1024 * 1024
    assert len(tf_config_of(manifests, manifests.pods[-1])["cluster"]["worker"]) == limit
    assert max(len(e["value"]) for p in manifests.pods for e in container(p)["env"]) < 128


def test_headless_service_gives_stable_names():
    manifests = render(JobBuilder("smoke").replicas(2).defaulted(), IMAGE)
    (service,) = manifests.services
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"densenet.dev/job-name": "smoke"}
    assert [p["metadata"]["name"] for p in manifests.pods] == ["smoke-worker-0", "smoke-worker-1"]


def test_a_jobs_network_policy_admits_its_own_pods_and_the_metrics_readers():
    job = JobBuilder("np").accelerator("gaudi", 2).set(MEMORY, "1Gi").defaulted()
    manifests = render(job, IMAGE, network=NetworkAccess(("ops", "monitoring")))
    (policy,) = manifests.network_policies
    own = {"densenet.dev/job-name": "np"}
    assert policy["spec"]["podSelector"] == {"matchLabels": own}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    peers, metrics = policy["spec"]["ingress"]
    assert peers == {"from": [{"podSelector": {"matchLabels": own}}]}  # every port
    assert [f["namespaceSelector"]["matchLabels"] for f in metrics["from"]] == [
        {"kubernetes.io/metadata.name": "ops"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    # Named ports: exactly the container ports the trainer processes serve /metrics on.
    served = {p["name"] for pod in manifests.pods for p in container(pod)["ports"]}
    assert {p["port"] for p in metrics["ports"]} == served == {"metrics", "metrics-1"}
    kinds = [o["kind"] for o in manifests.objects()]
    assert kinds.index("NetworkPolicy") < kinds.index("Pod")
    assert render(job, IMAGE).network_policies == []
    quiet = JobBuilder("q").set("spec.metrics.enabled", False).defaulted()
    (closed,) = render(quiet, IMAGE, network=NetworkAccess(("ops",))).network_policies
    only_peers = {"from": [{"podSelector": {"matchLabels": {"densenet.dev/job-name": "q"}}}]}
    assert closed["spec"]["ingress"] == [only_peers]  # no metrics port to open


@pytest.mark.parametrize(
    ("builder", "command_head", "resources", "env"),
    [
        (
            JobBuilder("n").accelerator("nvidia", 8).replicas(2),
            ["densenet-train", "--device", "gpu"],
            {"nvidia.com/gpu": "8"},
            {"DENSENET_RANK": "1", "DENSENET_TF_TASK_INDEX": "1"},
        ),
        (
            JobBuilder("a").accelerator("ascend", 8).replicas(2),
            ["densenet-launch", "--nproc", "8", "--", "densenet-train", "--device", "npu"],
            {"huawei.com/Ascend910": "8"},
            {
                "DENSENET_RANK": "8",
                "RANK_ID": "8",
                "RANK_SIZE": "16",
                "RANK_TABLE_FILE": "/user/serverid/devindex/config/hccl.json",
                "JOB_ID": "a",
            },
        ),
        (
            JobBuilder("g").accelerator("gaudi", 8).replicas(2).set(MEMORY, "1Gi"),
            ["densenet-launch", "--nproc", "8", "--", "densenet-train", "--device", "hpu"],
            {"habana.ai/gaudi": "8", "hugepages-2Mi": "4Gi"},
            {"DENSENET_RANK": "8", "DENSENET_TF_TASK_INDEX": "8"},
        ),
    ],
)
def test_accelerator_kinds(builder, command_head, resources, env):
    pod = render(builder.defaulted(), IMAGE).pods[1]
    c = container(pod)
    assert c["command"][: len(command_head)] == command_head
    assert c["resources"]["limits"] == resources
    assert resources.items() <= c["resources"]["requests"].items()
    got = env_of(pod)
    for name, value in env.items():
        assert got[name] == value
    assert "TF_CONFIG" not in got


def test_nvidia_tf_config_lists_one_worker_per_pod():
    manifests = render(JobBuilder("n").accelerator("nvidia", 8).replicas(2).defaulted(), IMAGE)
    assert tf_config_of(manifests, manifests.pods[0]) == {
        "cluster": {"worker": ["n-worker-0.n.ns1.svc:2222", "n-worker-1.n.ns1.svc:2222"]},
        "task": {"type": "worker", "index": 0},
    }


def test_ascend_pods_mount_the_rank_table_and_declare_a_port_per_process():
    manifests = render(JobBuilder("a").accelerator("ascend", 4).replicas(2).defaulted(), IMAGE)
    (cm,) = manifests.config_maps
    assert cm["metadata"]["name"] == "rings-config-a"
    assert cm["data"] == {"hccl.json": '{"status":"initializing"}'}
    pod = manifests.pods[0]
    assert {"name": "rank-table", "configMap": {"name": "rings-config-a"}} in pod["spec"]["volumes"]
    assert {
        "name": "rank-table",
        "mountPath": "/user/serverid/devindex/config",
        "readOnly": True,
    } in container(pod)["volumeMounts"]
    assert container(pod)["ports"] == [
        {"name": "metrics", "containerPort": 9410, "protocol": "TCP"},
        {"name": "metrics-1", "containerPort": 9411, "protocol": "TCP"},
        {"name": "metrics-2", "containerPort": 9412, "protocol": "TCP"},
        {"name": "metrics-3", "containerPort": 9413, "protocol": "TCP"},
    ]


def test_ascend_static_pins_pods_to_their_nodes():
    servers = [
        {
            "serverId": "10.10.0.11",
            "nodeName": "node-a",
            "devices": [{"deviceId": "0", "deviceIp": "192.168.100.101"}],
        },
        {"serverId": "10.10.0.12", "devices": [{"deviceId": "0", "deviceIp": "192.168.100.102"}]},
    ]
    job = (
        JobBuilder("a")
        .accelerator("ascend", 1)
        .replicas(2)
        .set("spec.ascend", {"source": "static", "servers": servers})
    )
    manifests = render(job.defaulted(), IMAGE)
    assert manifests.pods[0]["spec"]["nodeName"] == "node-a"
    assert "nodeName" not in manifests.pods[1]["spec"]
    assert json.loads(manifests.config_maps[0]["data"]["hccl.json"])["status"] == "completed"


def test_gaudi_device_plugin_mode_is_unprivileged():
    manifests = render(
        JobBuilder("g").accelerator("gaudi", 8).set(MEMORY, "1Gi").defaulted(), IMAGE
    )
    pod = manifests.pods[0]
    assert pod["spec"]["hostIPC"] is True
    assert container(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_NICE"]},
    }
    assert pod["metadata"]["annotations"] == {}
    tf_config = tf_config_of(manifests, pod)
    assert tf_config["cluster"]["worker"] == [f"g-worker-0.g.ns1.svc:{2410 + i}" for i in range(8)]
    assert tf_config["task"] == {"type": "worker", "index": 0}


def test_gaudi_host_devices_are_privileged_and_say_so():
    job = (
        JobBuilder("g")
        .accelerator("gaudi", 2)
        .set("spec.gaudi", {"mode": "hostDevices"})
        .set(MEMORY, "1Gi")
    )
    pod = render(job.defaulted(), IMAGE).pods[0]
    assert container(pod)["securityContext"]["privileged"] is True
    assert "privileged" in pod["metadata"]["annotations"]["densenet.dev/privileged"]
    assert "habana.ai/gaudi" not in container(pod)["resources"]["limits"]
    assert {"name": "hl-1", "hostPath": {"path": "/dev/hl1", "type": "CharDevice"}} in pod["spec"][
        "volumes"
    ]
    assert {
        "name": "hl-controld-1",
        "hostPath": {"path": "/dev/hl_controlD1", "type": "CharDevice"},
    } in pod["spec"]["volumes"]
    assert {"name": "hl-controld-0", "mountPath": "/dev/hl_controlD0"} in container(pod)[
        "volumeMounts"
    ]


def test_training_fields_become_the_trainers_flags():
    job = (
        JobBuilder()
        .set(
            "spec.dataset",
            {
                "format": "tfrecord",
                "path": "/data",
                "numClasses": 10,
                "imageSize": 64,
                "volume": {"persistentVolumeClaim": {"claimName": "imagenet"}},
            },
        )
        .set(
            "spec.training",
            {
                "batchSize": 64,
                "optimizer": "sgd",
                "lr": 0.05,
                "lrSchedule": "steps",
                "finalLr": 0.00001,
                "warmupEpochs": 0,
                "epochs": 90,
                "weightDecay": 0.0001,
                "momentum": 0.9,
                "labelSmoothing": 0.1,
                "dropoutRate": 0.2,
                "precision": "bf16",
                "xla": True,
                "iterationsPerLoop": 100,
                "displayEvery": 50,
                "epochsBetweenEvals": 5,
                "cropScale": [0.5, 1],
                "hflip": 0,
                "extraArgs": ["--seed", "7"],
            },
        )
        .set("spec.checkpoint", {"everySteps": 500, "keep": 3, "path": "/ckpt"})
        .set("spec.pretrained", "/weights/dn121.h5")
        .set("spec.metrics", {"enabled": False})
    )
    pod = render(job.defaulted(), IMAGE).pods[0]
    assert container(pod)["command"] == [
        "densenet-train",
        "--device",
        "cpu",
        "--mode",
        "train",
        "--data_dir",
        "/data",
        "--num_classes",
        "10",
        "--image_size",
        "64",
        "--batch_size",
        "64",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--lr_sched",
        "steps",
        "--final_lr",
        "0.00001",
        "--warmup_epochs",
        "0.0",
        "--max_epochs",
        "90.0",
        "--weight_decay",
        "0.0001",
        "--momentum",
        "0.9",
        "--label_smoothing",
        "0.1",
        "--dropout_rate",
        "0.2",
        "--xla",
        "true",
        "--iterations_per_loop",
        "100",
        "--display_every",
        "50",
        "--epochs_between_evals",
        "5.0",
        "--hflip",
        "0.0",
        "--bfloat16",
        "--crop_scale",
        "0.5",
        "1.0",
        "--log_dir",
        "/ckpt/dn",
        "--save_checkpoints_steps",
        "500",
        "--keep_checkpoints",
        "3",
        "--pretrained",
        "/weights/dn121.h5",
        "--metrics_port",
        "0",
        "--seed",
        "7",
    ]
    assert container(pod)["ports"] == []
    assert {"name": "dataset", "persistentVolumeClaim": {"claimName": "imagenet"}} in pod["spec"][
        "volumes"
    ]
    assert {"name": "dataset", "mountPath": "/data", "readOnly": True} in container(pod)[
        "volumeMounts"
    ]


def test_evaluate_mode_reads_the_checkpoint():
    job = (
        JobBuilder().set("spec.mode", "evaluate").set("spec.evaluate.checkpoint", "/ckpt/model-100")
    )
    command = container(render(job.defaulted(), IMAGE).pods[0])["command"]
    assert command[command.index("--checkpoint_dir") + 1] == "/ckpt/model-100"
    assert "--pretrained" not in command


def test_template_overrides_and_gang_scheduling():
    job = (
        JobBuilder("v")
        .replicas(3)
        .set(
            "spec.template",
            {
                "metadata": {"labels": {"team": "vision"}, "annotations": {"note": "x"}},
                "resources": {"requests": {"cpu": "2"}},
                "env": [{"name": "EXTRA", "value": "1"}],
                "serviceAccountName": "reader",
                "automountServiceAccountToken": True,
            },
        )
        .set(
            "spec.scheduling",
            {"gang": {"enabled": True, "queue": "research"}, "priorityClassName": "high"},
        )
    )
    manifests = render(job.defaulted(), IMAGE)
    pod = manifests.pods[0]
    assert pod["metadata"]["labels"]["team"] == "vision"
    assert pod["metadata"]["annotations"] == {"note": "x", "scheduling.k8s.io/group-name": "v"}
    assert pod["spec"]["schedulerName"] == "volcano"
    assert pod["spec"]["serviceAccountName"] == "reader"
    assert pod["spec"]["automountServiceAccountToken"] is True
    assert pod["spec"]["priorityClassName"] == "high"
    assert env_of(pod)["EXTRA"] == "1"
    (group,) = manifests.pod_groups
    assert group["spec"] == {"minMember": 3, "queue": "research"}


def test_kueue_gang_uses_plain_pod_group_labels():
    job = (
        JobBuilder("k")
        .replicas(2)
        .set("spec.scheduling", {"gang": {"enabled": True, "provider": "kueue", "queue": "lq"}})
    )
    manifests = render(job.defaulted(), IMAGE)
    pod = manifests.pods[0]
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lq"
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] == "k-0"  # attempt 0
    assert pod["metadata"]["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "2"
    assert manifests.pod_groups == []


NASTY = 'x"\n  injected: true\n{{ 7*7 }} {% if true %}y{% endif %}: &a *a !!python/object'


def test_values_with_yaml_or_template_syntax_stay_plain_strings():
    job = (
        JobBuilder()
        .set("spec.dataset", {"format": "folder", "path": "/" + NASTY})
        .set("spec.template.metadata.labels", {"team": "a"})
        .set("spec.template.metadata.annotations", {"note": NASTY})
        .set("spec.template.env", [{"name": "USER_VALUE", "value": NASTY}])
        .set("spec.training", {"extraArgs": [NASTY]})
        .set("spec.image", NASTY)
    )
    pod = render(job.defaulted(), IMAGE).pods[0]
    assert pod["metadata"]["annotations"]["note"] == NASTY
    assert env_of(pod)["USER_VALUE"] == NASTY
    assert container(pod)["image"] == NASTY
    assert container(pod)["command"][-1] == NASTY
    assert NASTY in container(pod)["command"]
    assert "injected" not in pod and "injected" not in pod["metadata"]
    # And the whole object survives a YAML round trip unchanged.
    assert yaml.safe_load(yaml.safe_dump(pod)) == pod
