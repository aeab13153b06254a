"""``densenet-operator``: ``render`` prints every manifest a job implies (for review and GitOps)
with the functions the operator itself uses.

Exit codes: 0 ok, 2 bad input (one line per problem, each naming the field; no traceback).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from . import DEFAULT_TRAINER_IMAGE, schema
from .job import Job
from .render import render

PROG = "densenet-operator"
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class BadInputError(Exception):
    pass


# Strings that a YAML 1.2 reader (kubectl, Go) would take for a number, bool or null, though
# PyYAML's YAML 1.1 rules leave them unquoted (e.g. 1e-05): they are written quoted.
_YAML12_SCALAR = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~)$"
)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _YAML12_SCALAR.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Kubernetes operator for DenseNetTrainingJob.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = commands.add_parser(
        "render",
        help="print every manifest a job implies",
        description="Validate DenseNetTrainingJobs offline against the CRD (schema, defaults "
        "and CEL rules, except: " + "; ".join(schema.server_only_rules()) + ", which compare "
        "with the stored object and only the API server checks) and print every child object.",
    )
    r.add_argument("-f", "--filename", required=True, help="job YAML file ('-' reads stdin)")
    r.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    r.add_argument("-n", "--namespace", default="default", help="namespace for jobs that name none")
    r.add_argument(
        "--trainer-image",
        default=DEFAULT_TRAINER_IMAGE,
        help=f"image of jobs whose spec.image is empty (default: {DEFAULT_TRAINER_IMAGE})",
    )
    r.add_argument("--attempt", type=int, default=0, help="restart attempt to render (default 0)")
    return parser


def _read(filename: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except OSError as exc:
        raise BadInputError(f"{filename}: cannot read it ({exc.strerror})") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInputError(f"{filename}:{where}: not valid YAML ({problem})") from exc
    if not docs:
        raise BadInputError(f"{filename}: holds no DenseNetTrainingJob")
    return docs


def _render_file(args: argparse.Namespace) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    problems: list[str] = []
    for doc in _read(args.filename):
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
        where = f"{args.filename}: {name}" if name else args.filename
        try:
            job = schema.apply(doc)
        except schema.InvalidJobError as err:
            problems += [f"{where}: {e}" for e in err.errors]
            continue
        manifests = render(Job.from_object(job, args.namespace), args.trainer_image, args.attempt)
        objects += manifests.objects()
    if problems:
        raise BadInputError("\n".join(problems))
    return objects


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        objects = _render_file(args)
    except BadInputError as err:
        for line in str(err).splitlines():
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.output == "json":
            json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, sys.stdout, indent=2)
            print()
        else:
            yaml.dump_all(objects, sys.stdout, Dumper=_Dumper, sort_keys=False, explicit_start=True)
    except BrokenPipeError:  # `render ... | head`: the reader has all it wanted
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
