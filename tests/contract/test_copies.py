"""Copies of the contract's facts that cannot import it (the CRD, the chart, the Dockerfiles,
the trainer's console scripts and README) agree with densenet_contract: change a value in one
place and this names the other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from densenet_contract import env, labels, metrics, ports, trainer_cli
from densenet_operator import DEFAULT_TRAINER_IMAGE, settings
from densenet_operator.opmetrics import OperatorMetrics
from densenet_operator.render.trainer_args import TRAINING_FLAGS
from densenet_trainer import flags
from densenet_trainer.metrics import TrainerMetrics

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "densenet.dev_densenettrainingjobs.yaml"
CHART = REPO / "deploy" / "helm" / "densenet-operator"
RULES = CHART / "files" / "prometheus-rules.yaml"
RULE_TESTS = REPO / "deploy" / "alerts" / "tests.yaml"
DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))
# A PromQL metric or label name.
NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_]*")


def _contract_flags() -> dict[str, str]:
    """Constant name -> flag, for every densenet-train flag in trainer_cli."""
    return {
        k: v
        for k, v in vars(trainer_cli).items()
        if k.isupper() and isinstance(v, str) and v.startswith("--") and len(v) > 2
    }


def _crd_spec() -> dict:
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _expose(dockerfile: str) -> set[int]:
    lines = (REPO / dockerfile).read_text().splitlines()
    return {
        int(p.split("/")[0])
        for line in lines
        if line.startswith("EXPOSE")
        for p in line.split()[1:]
    }


# --- the CRD ---


def test_crd_metrics_port_default_is_the_trainers() -> None:
    port = _crd_spec()["properties"]["metrics"]["properties"]["port"]
    assert port["default"] == ports.TRAINER_METRICS
    assert flags.cfg.DEFAULT_METRICS_PORT == ports.TRAINER_METRICS


def _env_rules() -> list[str]:
    items = _crd_spec()["properties"]["template"]["properties"]["env"]["items"]
    return [r["rule"] for r in items["x-kubernetes-validations"]]


def _listed(rule: str) -> list[str]:
    (listed,) = re.findall(r"self\.name in \[([^\]]*)\]", rule)
    return [name.strip().strip("'") for name in listed.split(",")]


def test_crd_refuses_exactly_the_variables_the_operator_owns() -> None:
    (rule,) = [r for r in _env_rules() if "startsWith" in r]
    assert f"self.name.startsWith('{env.OWN_PREFIX}')" in rule
    assert all(n.startswith(env.OWN_PREFIX) for n in (env.JOB_NAME, env.RANK, env.LOCAL_RANK))
    others = [n for n in env.OPERATOR_OWNED if not n.startswith(env.OWN_PREFIX)]
    assert _listed(rule) == others


def test_crd_refuses_exactly_the_variables_the_devices_own() -> None:
    (rule,) = [r for r in _env_rules() if "endsWith" in r]
    assert f"self.name.endsWith('{env.DEVICE_LIST_SUFFIX}')" in rule
    assert _listed(rule) == list(env.DEVICE_OWNED)
    for device_list in (env.ASCEND_VISIBLE_DEVICES, env.HABANA_VISIBLE_DEVICES):
        assert device_list.endswith(env.DEVICE_LIST_SUFFIX)


def _extra_args_rules() -> list[dict]:
    extra_args = _crd_spec()["properties"]["training"]["properties"]["extraArgs"]
    return extra_args["items"]["x-kubernetes-validations"]


def _flag_fields(text: str) -> list[dict[str, str]]:
    """Every CEL map literal of flag -> spec field in ``text``."""
    return [
        dict(re.findall(r"'(--[a-z_0-9]+)': '([a-zA-Z.]+)'", literal))
        for literal in re.findall(r"\{'--[^}]*\}", text)
    ]


def test_crd_refuses_exactly_the_extra_args_the_contract_lists() -> None:
    flag_rule, help_rule = _extra_args_rules()
    maps = _flag_fields(flag_rule["rule"]) + _flag_fields(flag_rule["messageExpression"])
    assert len(maps) == 3  # the rule's, and the message's two
    refused = [f for f in trainer_cli.EXTRA_ARGS_REFUSED if f not in trainer_cli.HELP]
    for flag_fields in maps:
        assert list(flag_fields) == refused
        assert flag_fields == maps[0]
    short, long = trainer_cli.HELP
    assert help_rule["rule"] == (
        f"!self.startsWith('{short}') && self != '{long}' && !self.startsWith('{long}=')"
    )


def test_the_refused_extra_args_are_every_name_of_what_the_operator_writes() -> None:
    """The trainer's flag table decides: each flag the operator writes, every other name of
    the same setting, and the help flags."""
    written = {f for k, f in _contract_flags().items() if k != "LAUNCH_NPROC"}
    settings = {flag.field for flag in flags.ALL_FLAGS if flag.name in written}
    every_name = {flag.name for flag in flags.ALL_FLAGS if flag.field in settings}
    helps = {s for a in flags.build_parser()._actions if a.dest == "help" for s in a.option_strings}
    assert set(trainer_cli.EXTRA_ARGS_REFUSED) == every_name | helps
    assert set(trainer_cli.HELP) == helps


def test_the_crd_names_the_spec_field_each_refused_flag_comes_from() -> None:
    (flag_fields, *_) = _flag_fields(_extra_args_rules()[0]["rule"])
    for field, flag in TRAINING_FLAGS.items():
        assert flag_fields[flag] == f"spec.training.{field}"
    for path in set(flag_fields.values()):
        node = _crd_spec()
        for key in path.split(".")[1:]:
            node = node["properties"][key]  # a KeyError names a field the CRD lacks


def test_crd_metrics_port_rules_know_the_tensorflow_ports() -> None:
    rules = [
        r["rule"]
        for r in _crd_spec()["x-kubernetes-validations"]
        if r.get("fieldPath") == ".metrics.port"
    ]
    assert {int(n) for r in rules for n in re.findall(r"\b[0-9]{4}\b", r)} == {
        ports.TF_GRPC,
        ports.GAUDI_BASE,
    }


def test_every_flag_the_crd_names_is_a_trainer_flag() -> None:
    named = set(FLAG.findall(CRD.read_text()))
    known = {s for a in flags.build_parser()._actions for s in a.option_strings}
    assert named, "the CRD's descriptions name densenet-train's flags"
    assert named <= known, f"the CRD names flags densenet-train lacks: {named - known}"


# --- the chart ---


def test_chart_values_carry_the_operators_ports_and_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["operator"]["metricsPort"] == ports.OPERATOR_METRICS
    assert values["operator"]["healthPort"] == ports.OPERATOR_HEALTH
    assert values["metricsService"]["port"] == ports.OPERATOR_METRICS
    assert values["operator"]["trainerImage"] == DEFAULT_TRAINER_IMAGE
    assert values["operator"]["noScrapeNodes"] == settings.DEFAULT_NO_SCRAPE_NODES


def test_chart_deployment_serves_health_where_the_operator_does() -> None:
    text = (CHART / "templates" / "deployment.yaml").read_text()
    assert f":{{{{ .Values.operator.healthPort }}}}{ports.HEALTH_PATH}" in text
    assert f"path: {ports.HEALTH_PATH}" in text
    assert settings.DEFAULT_LIVENESS.endswith(f":{ports.OPERATOR_HEALTH}{ports.HEALTH_PATH}")


def test_chart_podmonitor_selects_trainer_pods_by_the_operators_labels() -> None:
    text = (CHART / "templates" / "podmonitor.yaml").read_text()
    assert f"{labels.NAME}: {labels.TRAINER_APP}" in text
    assert f"{labels.MANAGED_BY}: {labels.MANAGER}" in text
    # Prometheus turns a pod label into __meta_kubernetes_pod_label_<name, non-word chars as _>.
    assert "__meta_kubernetes_pod_label_" + re.sub(r"\W", "_", labels.ACCELERATOR) in text
    (port_line,) = [line for line in text.splitlines() if line.strip().startswith("- port:")]
    assert f"}}}}{ports.metrics_port_name(0)}{{{{" in port_line
    assert f"}}}}{ports.METRICS_PORT_NAME}-{{{{ $rank }}}}" in port_line
    assert f"path: {ports.METRICS_PATH}" in text


def _queried(text: str) -> set[str]:
    """densenet_* series a rules or dashboard text queries (recording rules, with ':', aside)."""
    return {n for n in NAME.findall(text) if n.startswith("densenet_") and ":" not in n}


@pytest.mark.parametrize("path", [RULES, RULE_TESTS, *DASHBOARDS], ids=lambda p: p.name)
def test_alerts_and_dashboards_query_only_exported_series(path: Path) -> None:
    exported = metrics.series(metrics.TRAINER) | metrics.series(metrics.OPERATOR)
    queried = _queried(path.read_text())
    assert queried, f"{path.name} queries no densenet_ series"
    assert queried <= exported, f"{path.name} queries series nobody exports: {queried - exported}"


@pytest.mark.parametrize("path", [RULES, *DASHBOARDS], ids=lambda p: p.name)
def test_alerts_and_dashboards_group_by_exported_labels(path: Path) -> None:
    text = path.read_text()
    grouped = {
        name.strip()
        for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", text)
        for name in clause.split(",")
        if name.strip()
    }
    known = {
        *metrics.TRAINER_LABELS,
        *metrics.OPERATOR_JOB_LABELS,
        metrics.HANDLER_LABEL,
        metrics.RESULT_LABEL,
        metrics.PHASE_LABEL,
        "le",  # a histogram bucket's bound (Prometheus's own label)
    }
    assert grouped <= known, f"{path.name} groups by labels nobody sets: {grouped - known}"


def test_runbooks_name_the_operators_labels() -> None:
    named = set(re.findall(r"densenet\.dev/[a-z-]+", RULES.read_text()))
    assert named <= {labels.JOB, labels.ACCELERATOR, labels.REPLICA_INDEX, labels.ATTEMPT}


# --- what the processes export ---


def test_trainer_exports_the_contracts_metrics() -> None:
    exported = TrainerMetrics({name: "x" for name in metrics.TRAINER_LABELS})
    families = {m.name: m.type for m in exported.registry.collect()}
    assert families == metrics.TRAINER


def test_operator_exports_the_contracts_metrics() -> None:
    exported = OperatorMetrics()
    families = {m.name: m.type for m in exported.registry.collect()}
    assert families == metrics.OPERATOR


# --- the images and the trainer package ---


def test_dockerfiles_expose_the_contracts_ports() -> None:
    assert _expose("Dockerfile.trainer") == {ports.TRAINER_METRICS}
    assert _expose("Dockerfile.operator") == {ports.OPERATOR_METRICS, ports.OPERATOR_HEALTH}


def test_trainer_console_scripts_are_the_programs_the_operator_runs() -> None:
    project = tomllib.loads((REPO / "trainer" / "pyproject.toml").read_text())["project"]
    assert {trainer_cli.TRAIN, trainer_cli.LAUNCH} <= set(project["scripts"])


def test_trainer_declares_and_documents_every_flag_the_operator_passes() -> None:
    """The trainer's parser takes each, and the trainer README (the user contract) names it."""
    declared = {s for a in flags.build_parser()._actions for s in a.option_strings}
    readme = (REPO / "trainer" / "README.md").read_text()
    for constant, flag in _contract_flags().items():
        if constant == "LAUNCH_NPROC":
            assert f"{trainer_cli.LAUNCH} {flag} " in readme
            continue
        assert flag in declared, f"trainer_cli.{constant} = {flag!r}: densenet-train lacks it"
        assert re.search(rf"`{flag}\b", readme), f"trainer/README.md does not document {flag}"
