"""Golden tests of the pure renderers, one table per accelerator kind. Expected objects are
written by hand from the issue and REFERENCE.md, never produced by the code under test."""

from __future__ import annotations

import json

import pytest
import yaml

from densenet_operator.render import render
from tests.operator.jobs import IMAGE, JobBuilder

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
                            "name": "TF_CONFIG",
                            "value": '{"cluster":{"worker":["smoke-worker-0.smoke.ns1.svc:2222",'
                            '"smoke-worker-1.smoke.ns1.svc:2222"]},'
                            '"task":{"type":"worker","index":1}}',
                        },
                    ],
                    "ports": [{"name": "metrics", "containerPort": 9410, "protocol": "TCP"}],
                    "resources": {},
                    "volumeMounts": [
                        {"name": "checkpoints", "mountPath": "/checkpoints"},
                        {"name": "scratch", "mountPath": "/tmp"},
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
            ],
        },
    }


def test_headless_service_gives_stable_names():
    manifests = render(JobBuilder("smoke").replicas(2).defaulted(), IMAGE)
    (service,) = manifests.services
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"densenet.dev/job-name": "smoke"}
    assert [p["metadata"]["name"] for p in manifests.pods] == ["smoke-worker-0", "smoke-worker-1"]
    assert manifests.config_maps == []


@pytest.mark.parametrize(
    ("builder", "command_head", "resources", "env"),
    [
        (
            JobBuilder("n").accelerator("nvidia", 8).replicas(2),
            ["densenet-train", "--device", "gpu"],
            {"nvidia.com/gpu": "8"},
            {"DENSENET_RANK": "1", "TF_CONFIG": None},
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
            {"DENSENET_RANK": "8", "TF_CONFIG": None},
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
        assert name in got
        if value is not None:
            assert got[name] == value


def test_nvidia_tf_config_lists_one_worker_per_pod():
    pod = render(JobBuilder("n").accelerator("nvidia", 8).replicas(2).defaulted(), IMAGE).pods[0]
    assert json.loads(env_of(pod)["TF_CONFIG"]) == {
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
    pod = render(
        JobBuilder("g").accelerator("gaudi", 8).set(MEMORY, "1Gi").defaulted(), IMAGE
    ).pods[0]
    assert pod["spec"]["hostIPC"] is True
    assert container(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_NICE"]},
    }
    assert pod["metadata"]["annotations"] == {}
    tf_config = json.loads(env_of(pod)["TF_CONFIG"])
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
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] == "k"
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
