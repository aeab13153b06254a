"""Writes the dashboards into the Helm chart, or checks that the chart's copies are current.

python -m densenet_dashboards            # write (what `make dashboards` runs)
python -m densenet_dashboards --check    # exit 1, naming the stale files, if any differ
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from densenet_dashboards import training

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DASHBOARD_DIR = REPO_ROOT / "deploy" / "helm" / "densenet-operator" / "files" / "dashboards"

# File name in the chart -> the function that builds the dashboard.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "densenet-training.json": training.build,
}


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard, exactly as the chart carries it."""
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def stale(directory: Path = CHART_DASHBOARD_DIR) -> list[str]:
    """Names of the generated files that are missing, different, or no longer generated."""
    wanted = render_all()
    present = {p.name for p in directory.glob("*.json")}
    names = sorted(wanted.keys() | present)
    return [n for n in names if n not in wanted or _text(directory / n) != wanted[n]]


def _text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def write(directory: Path = CHART_DASHBOARD_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    wanted = render_all()
    for old in directory.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (directory / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m densenet_dashboards", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    if not args.check:
        write()
        return 0
    out_of_date = stale()
    if out_of_date:
        rel = CHART_DASHBOARD_DIR.relative_to(REPO_ROOT)
        print(
            f"stale generated dashboards in {rel}: {', '.join(out_of_date)}; run `make dashboards`",
            file=sys.stderr,
        )
        return 1
    return 0
