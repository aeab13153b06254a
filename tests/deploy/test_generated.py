"""Generated files in the chart are current: the CRD copy, values.schema.json, the dashboards.

Each is written by `make chart` (or `make dashboards`) from its one source; editing a source
without regenerating fails here, naming the file and the command.
"""

from __future__ import annotations

from densenet_chart import generate as chart_files
from densenet_dashboards import generate as dashboards

from tests.deploy.tools import REPO_ROOT


def test_chart_crd_is_the_top_level_crd() -> None:
    source, copy = chart_files.CRD_SOURCE, chart_files.CRD_COPY
    assert source.is_file(), f"{source} is missing: the CRD's one source"
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy.relative_to(REPO_ROOT)} differs from {source.relative_to(REPO_ROOT)}: "
        "run `make chart`"
    )


def test_values_schema_is_generated_from_values_yaml() -> None:
    wanted = chart_files.wanted()[chart_files.SCHEMA]
    assert chart_files.SCHEMA.read_text() == wanted, (
        "values.schema.json is stale (values.yaml changed): run `make chart`"
    )


def test_dashboards_are_generated_from_code() -> None:
    assert dashboards.stale() == [], "stale dashboards in the chart: run `make dashboards`"


def test_check_mode_names_a_stale_file(tmp_path, capsys) -> None:
    """The staleness check really compares: a changed copy is reported, a fresh one is not."""
    dashboards.write(tmp_path)
    assert dashboards.stale(tmp_path) == []
    target = tmp_path / "densenet-training.json"
    target.write_text(target.read_text().replace("FPS per rank", "FPS by rank"))
    (tmp_path / "hand-made.json").write_text("{}")
    assert dashboards.stale(tmp_path) == ["densenet-training.json", "hand-made.json"]
