"""The alert rules: promtool-valid, unit-tested firing and not firing, each with a runbook."""

from __future__ import annotations

import re

import yaml

from tests.deploy.tools import RULE_TESTS, RULES, contract_metric_names, promtool, run

METRIC = re.compile(r"\b(densenet_[a-z0-9_:]+)")


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    result = run(promtool(), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(promtool(), "test", "rules", str(RULE_TESTS), cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_the_on_call_needs() -> None:
    assert {a["alert"] for a in alerts()} == {
        "DenseNetTrainingStalled",
        "DenseNetLossNaN",
        "DenseNetLossExploding",
        "DenseNetStragglerRank",
        "DenseNetThroughputDrop",
        "DenseNetJobsRestarting",
        "DenseNetJobsStalled",
        "DenseNetOperatorDown",
        "DenseNetOperatorReconcileErrors",
    }


def test_every_alert_has_severity_summary_and_runbook() -> None:
    for alert in alerts():
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        for annotation in ("summary", "description", "runbook"):
            assert alert["annotations"].get(annotation), f"{alert['alert']}: no {annotation}"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for alert in alerts():
        assert cases.get(alert["alert"]) == {True, False}, (
            f"{alert['alert']}: needs a firing and a non-firing case in {RULE_TESTS.name}"
        )


def test_rules_name_only_exported_metrics() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = contract_metric_names() | recorded
    for rule in (r for g in groups for r in g["rules"]):
        names = set(METRIC.findall(rule["expr"]))
        assert names <= known, f"{rule.get('alert') or rule['record']}: {names - known}"
