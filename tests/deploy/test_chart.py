"""The Helm chart, rendered by the pinned helm: what a cluster would receive for each set of
values. (Server-side validation of these objects against a real API server belongs to the
cluster tests.)"""

from __future__ import annotations

import tarfile

import pytest
import yaml

from tests.deploy.tools import CHART, RULES, by_kind, helm, one, render, rule_set, run

MONITORING_API = ("--api-versions", "monitoring.coreos.com/v1")
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

# Rules on the objects of jobs: (API group, resource, verb), the contract with the operator;
# tests/deploy/test_rbac_audit.py checks against the API server's audit log that the operator
# uses each of them and nothing else.
JOB_RULES = {
    *{("densenet.dev", "densenettrainingjobs", v) for v in ("get", "list", "watch", "delete")},
    ("densenet.dev", "densenettrainingjobs/status", "patch"),
    ("densenet.dev", "densenettrainingjobs/finalizers", "update"),
    *{("", "pods", v) for v in ("get", "list", "watch", "create", "delete")},
    *{("", "services", v) for v in ("get", "create")},
    *{("", "configmaps", v) for v in ("get", "create", "patch")},
    ("", "events", "create"),
    ("", "events", "list"),
    *{("networking.k8s.io", "networkpolicies", v) for v in ("get", "create")},
}
CRD_RULES = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
NAMESPACE_RULES = {("", "namespaces", v) for v in ("list", "watch")}
# The operator reads a chief pod's node by name before dialling it (never a no-scrape node).
NODE_RULES = {("", "nodes", "get")}
VOLCANO_RULES = {("scheduling.volcano.sh", "podgroups", v) for v in ("get", "create")}
# Leader election: the operator's Lease in the release namespace.
LEASE_RULES = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
# The admin policy read back (by name) and a job's namespace labels (policy.enabled).
POLICY_RULES = {
    ("admissionregistration.k8s.io", "validatingadmissionpolicies", "get"),
    ("", "namespaces", "get"),
}


def container(objects: list[dict]) -> dict:
    (operator,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator


def test_helm_lint_passes_strict() -> None:
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}"]):
        result = run(helm(), "lint", "--strict", str(CHART), *values)
        assert result.returncode == 0, result.stdout + result.stderr


def test_default_render_is_the_operator_and_its_cluster_wide_rbac() -> None:
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    # The Prometheus Operator's objects only where the cluster serves its API.
    assert not MONITORING_KINDS & set(kinds)
    for obj in objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "densenet-operator"


def test_deployment_runs_the_operator_as_the_contract_says() -> None:
    objects = render()
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["replicas"] == 1 and "strategy" not in spec  # leader election: rolling is safe
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    c = container(objects)
    assert c["image"] == "densenet-operator:0.1.0"  # the chart's appVersion
    assert [*c["command"], *c["args"]] == [
        "densenet-operator",
        "run",
        "--all-namespaces",
        "--trainer-image",
        "densenet-trainer:0.1.0",
        "--no-scrape-nodes",
        "densenet.dev/fake-node=true",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
        "--metrics-port",
        "8000",
        "--leader-election-lease",
        one(objects, "Deployment")["metadata"]["name"],  # one Lease per release
        "--admission-policy",
        one(objects, "ValidatingAdmissionPolicy")["metadata"]["name"],
        "--network-policy",
        "--metrics-from-namespace",
        "densenet-system",  # the release's namespace (tools.render)
        "--metrics-from-namespace",
        "monitoring",
    ]
    assert c["env"] == [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8000, "health": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_operator_pod_is_locked_down() -> None:
    objects = render()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    c = container(objects)
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in c["resources"]["limits"]
    # The operator is not its PID namespace's init, which would drop an early SIGTERM.
    assert pod["shareProcessNamespace"] is True


def test_values_reach_the_operator_command_line() -> None:
    c = container(
        render(
            "--set",
            "operator.trainerImage=registry.example/densenet-trainer:ascend",
            "--set",
            "operator.noScrapeNodes=type=kwok",
            "--set",
            "image.tag=0.2.0",
            "--set",
            "operator.extraArgs={--verbose}",
        )
    )
    args = c["args"]
    assert args[args.index("--trainer-image") + 1] == "registry.example/densenet-trainer:ascend"
    assert args[args.index("--no-scrape-nodes") + 1] == "type=kwok"
    assert args[-1] == "--verbose"
    assert c["image"] == "densenet-operator:0.2.0"


def test_cluster_wide_rbac_is_the_least_the_operator_needs() -> None:
    objects = render()
    role = one(objects, "ClusterRole")
    # kopf lists namespaces only when not cluster-wide.
    assert rule_set(role) == JOB_RULES | CRD_RULES | NODE_RULES | POLICY_RULES
    (policy_rule,) = [r for r in role["rules"] if "validatingadmissionpolicies" in r["resources"]]
    assert policy_rule["resourceNames"] == [
        one(objects, "ValidatingAdmissionPolicy")["metadata"]["name"]
    ]
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": one(objects, "ServiceAccount")["metadata"]["name"],
            "namespace": "densenet-system",
        }
    ]
    assert [r["metadata"]["namespace"] for r in by_kind(objects, "Role")] == ["densenet-system"]
    assert rule_set(one(objects, "Role")) == LEASE_RULES


def test_leader_election_lease_is_granted_only_in_the_release_namespace() -> None:
    for values in ([], ["--set", "watchNamespaces={team-a}"]):
        objects = render(*values)
        leases = [r for r in by_kind(objects, "Role") if rule_set(r) & LEASE_RULES]
        assert len(leases) == 1 and rule_set(leases[0]) == LEASE_RULES
        assert leases[0]["metadata"]["namespace"] == "densenet-system"
        (binding,) = [
            b for b in by_kind(objects, "RoleBinding")
            if b["roleRef"]["name"] == leases[0]["metadata"]["name"]
        ]  # fmt: skip
        assert binding["metadata"]["namespace"] == "densenet-system"
        assert binding["subjects"][0]["name"] == one(objects, "ServiceAccount")["metadata"]["name"]
        assert not rule_set(one(objects, "ClusterRole")) & LEASE_RULES


def test_namespaced_rbac_grants_only_the_listed_namespaces() -> None:
    objects = render("--set", "watchNamespaces={team-a,team-b}", *MONITORING_API)
    args = container(objects)["args"]
    assert "--all-namespaces" not in args
    assert args[1:5] == ["--namespace", "team-a", "--namespace", "team-b"]
    roles = [r for r in by_kind(objects, "Role") if not rule_set(r) & LEASE_RULES]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rule_set(role) == JOB_RULES
    bindings = {
        b["metadata"]["namespace"]: b
        for b in by_kind(objects, "RoleBinding")
        if not b["roleRef"]["name"].endswith("-leader-election")
    }
    assert sorted(bindings) == ["team-a", "team-b"]
    for binding in bindings.values():
        assert binding["subjects"][0]["namespace"] == "densenet-system"
    # Cluster-wide, only what kopf needs to find its CRD and match its namespace names, and
    # nodes by name (progress reads): no pods anywhere.
    assert rule_set(one(objects, "ClusterRole")) == (
        CRD_RULES | NAMESPACE_RULES | NODE_RULES | POLICY_RULES
    )
    podmonitor = one(objects, "PodMonitor")
    assert podmonitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_gang_scheduling_value_adds_volcano_podgroups() -> None:
    assert not rule_set(one(render(), "ClusterRole")) & VOLCANO_RULES
    on = rule_set(one(render("--set", "gangScheduling.volcano=true"), "ClusterRole"))
    assert on & VOLCANO_RULES == VOLCANO_RULES
    namespaced = render("--set", "gangScheduling.volcano=true", "--set", "watchNamespaces={a}")
    (role,) = [r for r in by_kind(namespaced, "Role") if r["metadata"]["namespace"] == "a"]
    assert rule_set(role) == JOB_RULES | VOLCANO_RULES


def test_no_broad_grants() -> None:
    for values in ([], ["--set", "watchNamespaces={a}"], ["--set", "gangScheduling.volcano=true"]):
        objects = render(*values)
        for role in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
            granted = rule_set(role)
            assert not {g for g in granted if "*" in g}
            assert not {g for g in granted if g[1] == "secrets"}
            assert {g for g in granted if g[1] == "nodes"} <= NODE_RULES


def test_monitoring_objects_follow_the_api_and_the_values() -> None:
    kinds = lambda objects: {o["kind"] for o in objects} & MONITORING_KINDS  # noqa: E731
    assert kinds(render(*MONITORING_API)) == MONITORING_KINDS
    assert kinds(render("--set", "monitoring.mode=always")) == MONITORING_KINDS
    assert kinds(render("--set", "monitoring.mode=never", *MONITORING_API)) == set()
    assert kinds(render("--set", "monitoring.serviceMonitor.enabled=false", *MONITORING_API)) == {
        "PodMonitor",
        "PrometheusRule",
    }
    assert kinds(render("--set", "monitoring.podMonitor.enabled=false", *MONITORING_API)) == {
        "ServiceMonitor",
        "PrometheusRule",
    }
    assert kinds(render("--set", "monitoring.prometheusRule.enabled=false", *MONITORING_API)) == {
        "ServiceMonitor",
        "PodMonitor",
    }


def test_the_pod_monitor_caps_the_series_of_one_scrape() -> None:
    def limit(*args: str) -> int:
        (monitor,) = [o for o in render(*MONITORING_API, *args) if o["kind"] == "PodMonitor"]
        return monitor["spec"]["sampleLimit"]

    assert limit() == 500
    assert limit("--set", "monitoring.podMonitor.sampleLimit=50") == 50


@pytest.mark.parametrize(
    ("values", "release"),
    [
        ([], "kube-prometheus-stack"),
        (["--set", "monitoring.release=prom"], "prom"),
        (["--set", "monitoring.release="], None),
    ],
)
def test_release_label_is_configurable(values: list[str], release: str | None) -> None:
    objects = render(*values, "--set", "monitoring.additionalLabels.team=ml", *MONITORING_API)
    for kind in MONITORING_KINDS:
        labels = one(objects, kind)["metadata"]["labels"]
        assert labels.get("release") == release
        assert labels["team"] == "ml"


def test_servicemonitor_scrapes_the_operator_metrics_service() -> None:
    objects = render(*MONITORING_API)
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["densenet-system"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"] and port["targetPort"] == "metrics"
    assert endpoint["path"] == "/metrics"
    # The operator's own `namespace` label (the job's) must survive the scrape.
    assert endpoint["honorLabels"] is True
    # The alerts select up{job="densenet-operator"}, whatever the release is called.
    assert {"action": "replace", "targetLabel": "job", "replacement": "densenet-operator"} in (
        endpoint["relabelings"]
    )


def test_podmonitor_scrapes_every_local_rank_of_every_trainer() -> None:
    monitor = one(render(*MONITORING_API), "PodMonitor")
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "densenet-trainer",
        "app.kubernetes.io/managed-by": "densenet-operator",
    }
    assert spec["namespaceSelector"] == {"any": True}
    ports = [e["port"] for e in spec["podMetricsEndpoints"]]
    assert ports == ["metrics", *(f"metrics-{i}" for i in range(1, 8))]
    assert {e["path"] for e in spec["podMetricsEndpoints"]} == {"/metrics"}


def test_prometheusrule_carries_the_rules_file_verbatim() -> None:
    rule = one(render(*MONITORING_API), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_dashboards_configmap_is_labelled_for_the_grafana_sidecar() -> None:
    cm = one(render(), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"] == {
        p.name: p.read_text() for p in (CHART / "files" / "dashboards").glob("*.json")
    }
    assert "densenet-training.json" in cm["data"]
    moved = one(render("--set", "grafana.dashboards.namespace=monitoring"), "ConfigMap")
    assert moved["metadata"]["namespace"] == "monitoring"
    assert not by_kind(render("--set", "grafana.dashboards.enabled=false"), "ConfigMap")


def test_crd_ships_with_the_chart() -> None:
    objects = render("--include-crds")
    (crd,) = by_kind(objects, "CustomResourceDefinition")
    assert crd["metadata"]["name"] == "densenettrainingjobs.densenet.dev"
    assert crd["spec"]["names"]["shortNames"] == ["dntj"]


def test_packaged_chart_has_every_file_it_needs(tmp_path) -> None:
    result = run(helm(), "package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("densenet-operator-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for needed in (
        "crds/densenet.dev_densenettrainingjobs.yaml",
        "values.schema.json",
        "files/prometheus-rules.yaml",
        "files/dashboards/densenet-training.json",
        "templates/NOTES.txt",
    ):
        assert f"densenet-operator/{needed}" in names


def test_network_policy_flags_follow_the_values() -> None:
    args = container(render())["args"]
    at = args.index("--network-policy")
    assert args[at + 1 : at + 5] == [
        "--metrics-from-namespace", "densenet-system", "--metrics-from-namespace", "monitoring",
    ]  # fmt: skip
    off = render("--set", "networkPolicy.enabled=false")
    assert "--network-policy" not in container(off)["args"]
    rules = rule_set(one(off, "ClusterRole"))
    assert not {r for r in rules if r[0] == "networking.k8s.io"}
    quiet = container(render("--set", "networkPolicy.monitoringNamespace="))["args"]
    assert quiet.count("--metrics-from-namespace") == 1
