"""The Grafana dashboard: the panels and variables the issue asks for, and every panel's query
valid PromQL over metric names the trainer and the operator really export."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from densenet_dashboards import expand, panel_queries

from tests.deploy.tools import DASHBOARD_DIR, contract_metric_names, promtool, run

TRAINING = DASHBOARD_DIR / "densenet-training.json"
METRIC = re.compile(r"\b(densenet_[a-z0-9_]+|up)\b")


@pytest.fixture(scope="module")
def board() -> dict:
    return json.loads(TRAINING.read_text())


def queries_of(board: dict, title: str) -> list[str]:
    found = [q.expr for q in panel_queries(board) if q.panel == title]
    assert found, f"no panel titled {title!r}"
    return found


def test_variables_namespace_and_job(board: dict) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "job"}
    assert variables["datasource"]["query"] == "prometheus"
    assert "job_namespace" in variables["namespace"]["query"]
    assert '$namespace"' in variables["job"]["query"] and "job_name" in variables["job"]["query"]
    for name in ("namespace", "job"):
        assert variables[name]["multi"] and variables[name]["includeAll"]


@pytest.mark.parametrize(
    ("title", "metrics"),
    [
        ("Total FPS", ["densenet_images_processed_total"]),
        ("FPS per job", ["densenet_images_processed_total"]),
        ("FPS per rank", ["densenet_images_per_second"]),
        ("Loss", ["densenet_loss", "densenet_total_loss"]),
        ("Learning rate", ["densenet_learning_rate"]),
        ("Step time p50 and p95", ["densenet_step_duration_seconds_bucket"] * 2),
        ("Eval top-1 accuracy", ["densenet_eval_top1_ratio", "densenet_eval_top5_ratio"]),
        ("Job restarts per hour", ["densenet_operator_jobs_restarted_total"]),
        ("Jobs by phase", ["densenet_operator_jobs"]),
    ],
)
def test_required_panels(board: dict, title: str, metrics: list[str]) -> None:
    exprs = queries_of(board, title)
    assert [METRIC.search(e).group(1) for e in exprs] == metrics


def test_step_time_quantiles(board: dict) -> None:
    exprs = queries_of(board, "Step time p50 and p95")
    assert [e.split(",")[0] for e in exprs] == ["histogram_quantile(0.5", "histogram_quantile(0.95"]


def test_fps_per_rank_is_by_rank(board: dict) -> None:
    (panel,) = [p for p in board["panels"] if p["title"] == "FPS per rank"]
    assert "{{rank}}" in panel["targets"][0]["legendFormat"]


def test_trainer_queries_follow_the_variables(board: dict) -> None:
    for q in panel_queries(board):
        if "densenet_operator_" not in q.expr:
            assert 'job_namespace=~"$namespace"' in q.expr, q
            assert 'job_name=~"$job"' in q.expr, q


def test_panel_queries_lists_every_target(board: dict) -> None:
    targets = [t for p in board["panels"] for t in p.get("targets", [])]
    assert len(panel_queries(board)) == len(targets) >= 15
    assert all(t["datasource"]["uid"] == "${datasource}" for t in targets)


def test_queries_name_only_exported_metrics(board: dict) -> None:
    known = contract_metric_names()
    for q in panel_queries(board):
        names = set(METRIC.findall(q.expr)) - {"up"}
        assert names, q
        assert names <= known, f"{q.panel}: unknown metrics {names - known}"


def test_every_query_is_valid_promql(board: dict, tmp_path) -> None:
    """promtool parses each query (Grafana's variables filled in) as a recording rule."""
    rules = [
        {"record": f"dashboard:query:{i}", "expr": expand(q.expr)}
        for i, q in enumerate(panel_queries(board))
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool(), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_expand_refuses_unknown_variables() -> None:
    assert expand('x{a=~"$job"}[$__rate_interval]') == 'x{a=~".*"}[1m]'
    with pytest.raises(KeyError, match=r"\$cluster"):
        expand('x{c="$cluster"}')
