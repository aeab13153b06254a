"""Writes the chart's generated files, or checks that they are current.

python -m densenet_chart            # write (what `make chart` runs)
python -m densenet_chart --check    # exit 1, naming the stale files, if any differ
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from densenet_chart import values_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "densenet-operator"
CRD_NAME = "densenet.dev_densenettrainingjobs.yaml"
# The CRD's one source; the chart carries a copy (not a symlink: Argo CD and other git-based
# installers refuse symlinks that leave the chart, and every helm command warns about them).
CRD_SOURCE = REPO_ROOT / "crds" / CRD_NAME
CRD_COPY = CHART_DIR / "crds" / CRD_NAME
# The admin policy's rules: the operator's file is the source (it evaluates them too).
RULES_SOURCE = REPO_ROOT / "operator" / "src" / "densenet_operator" / "admission_rules.yaml"
RULES_COPY = CHART_DIR / "files" / "admission-rules.yaml"
VALUES = CHART_DIR / "values.yaml"
SCHEMA = CHART_DIR / "values.schema.json"


def wanted() -> dict[Path, str]:
    """Generated file -> the text it must have."""
    if not CRD_SOURCE.is_file():
        raise FileNotFoundError(f"{CRD_SOURCE.relative_to(REPO_ROOT)} is missing: nothing to copy")
    return {
        SCHEMA: values_schema.render(VALUES.read_text()),
        CRD_COPY: CRD_SOURCE.read_text(),
        RULES_COPY: RULES_SOURCE.read_text(),
    }


def stale() -> list[Path]:
    return [p for p, text in wanted().items() if not p.is_file() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m densenet_chart", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    try:
        files = wanted()
    except (values_schema.ValuesDocError, FileNotFoundError) as exc:
        print(f"densenet_chart: {exc}", file=sys.stderr)
        return 2
    if args.check:
        out_of_date = [p for p in files if not p.is_file() or p.read_text() != files[p]]
        if out_of_date:
            names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in out_of_date)
            print(f"stale generated chart files: {names}; run `make chart`", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0
