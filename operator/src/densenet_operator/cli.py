"""``densenet-operator``: ``run`` runs the operator; ``render`` prints every manifest a job
implies (for review and GitOps) with the functions the operator itself uses.

Exit codes: 0 ok, 2 bad input (one line per problem, each naming the field; no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import yaml

from . import DEFAULT_TRAINER_IMAGE, schema
from . import settings as defaults
from .job import Job
from .render import render

PROG = "densenet-operator"
LEASE_NAMESPACE_ENV = "POD_NAMESPACE"  # the downward API's metadata.namespace, in the chart
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class BadInputError(Exception):
    pass


# Strings that a YAML 1.2 reader (kubectl, Go) would take for a number, bool or null, though
# PyYAML's YAML 1.1 rules leave them unquoted (e.g. 1e-05, y): they are written quoted.
_YAML12_SCALAR = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~"
    r"|y|Y|n|N)$"
)
# Plain scalars kubectl's YAML reader (go-yaml v2, through sigs.k8s.io/yaml) takes for a float
# or a bool where PyYAML's YAML 1.1 rules read a string: 1e20 and 1.5e3, y and n.
_GO_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_GO_BOOL = re.compile(r"^(?:y|Y|n|N)$")


class _Loader(yaml.SafeLoader):
    """A job file read as kubectl reads it, so render and the server see the same values
    (timestamps stay strings too)."""

    bool_values: ClassVar[dict[str, bool]] = {**yaml.SafeLoader.bool_values, "y": True, "n": False}
    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _GO_FLOAT, list("-+.0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _GO_BOOL, list("yYnN"))


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
    _network_flags(r)

    run = commands.add_parser(
        "run",
        help="run the operator",
        description="Watch DenseNetTrainingJobs and run them. Replicas elect one leader on a "
        "coordination.k8s.io Lease; the others watch and wait. Reads the kubeconfig "
        "($KUBECONFIG or ~/.kube/config) or, in a pod, its ServiceAccount.",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeat for more; kopf globs like team-* work)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (default)"
    )
    run.add_argument(
        "--trainer-image",
        default=DEFAULT_TRAINER_IMAGE,
        help=f"image of jobs whose spec.image is empty (default: {DEFAULT_TRAINER_IMAGE})",
    )
    run.add_argument(
        "--no-scrape-nodes",
        default=defaults.DEFAULT_NO_SCRAPE_NODES,
        metavar="SELECTOR",
        help="label selector (k=v[,k=v]) of nodes whose pods are never dialled for progress "
        f"(default: {defaults.DEFAULT_NO_SCRAPE_NODES}; '' dials every node)",
    )
    run.add_argument(
        "--liveness",
        default=defaults.DEFAULT_LIVENESS,
        metavar="URL",
        help=f"kopf's health endpoint (default: {defaults.DEFAULT_LIVENESS}; '' turns it off)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.DEFAULT_METRICS_PORT,
        help=f"port of the operator's /metrics (default: {defaults.DEFAULT_METRICS_PORT}; 0 off)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=os.environ.get(LEASE_NAMESPACE_ENV, ""),
        metavar="NS",
        help=f"namespace of the leader-election Lease (default: ${LEASE_NAMESPACE_ENV}, the "
        "chart sets it to the release's; '' runs without election: one replica only)",
    )
    run.add_argument(
        "--admission-policy",
        default="",
        metavar="NAME",
        help="the ValidatingAdmissionPolicy with the admin's rules for jobs (the chart's): a job "
        "admitted before it, or that breaks it since, ends Failed, reason PolicyViolation "
        "(default: '', none)",
    )
    _network_flags(run)
    run.add_argument(
        "--leader-election-lease",
        default=defaults.DEFAULT_LEASE,
        metavar="NAME",
        help=f"name of the Lease; replicas that share it share the work (default: "
        f"{defaults.DEFAULT_LEASE})",
    )
    base = defaults.Settings()
    for flag, field, what in (
        (
            "--progress-interval",
            "progress_interval",
            "seconds between reads of the chief's /metrics",
        ),
        (
            "--pending-timeout",
            "pending_timeout",
            "seconds a pod may stay Pending before a PodsNotStarting condition",
        ),
        ("--backoff-seconds", "backoff_base", "first restart backoff, doubled per restart"),
        ("--backoff-max", "backoff_max", "longest restart backoff"),
        (
            "--resync-interval",
            "resync_interval",
            "seconds between looks at every job without events",
        ),
        (
            "--force-delete-after",
            "force_delete_after",
            "seconds a pod may stay terminating past its grace period before it is "
            "force-deleted (only when its node is NotReady or gone)",
        ),
        (
            "--lease-duration",
            "lease_duration",
            "seconds the leader's Lease holds without renewal (a takeover waits this long)",
        ),
        (
            "--cache-seconds",
            "cache_seconds",
            "seconds a node's labels, a namespace or the admission policy, once read, is reused "
            "(a change to one reaches running jobs within this)",
        ),
    ):
        run.add_argument(
            flag,
            type=_positive_float,
            dest=field,
            default=getattr(base, field),
            help=f"{what} (default: {getattr(base, field):g})",
        )
    run.add_argument("-v", "--verbose", action="store_true", help="log every reconcile")
    return parser


def _network_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network-policy",
        action="store_true",
        help="give every job a NetworkPolicy: its pods reach each other on every port, and "
        "its metrics ports are reachable only from --metrics-from-namespace (the chart's "
        "networkPolicy.enabled)",
    )
    parser.add_argument(
        "--metrics-from-namespace",
        action="append",
        dest="metrics_from_namespaces",
        default=[],
        metavar="NS",
        help="with --network-policy, a namespace whose pods may read the trainers' metrics "
        "ports (the operator's own, Prometheus's; repeat for more)",
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _read(filename: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except OSError as exc:
        raise BadInputError(f"{filename}: cannot read it ({exc.strerror})") from exc
    try:
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
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
        manifests = render(
            Job.from_object(job, args.namespace),
            args.trainer_image,
            args.attempt,
            defaults.Settings(
                network_policy=args.network_policy,
                metrics_from_namespaces=tuple(args.metrics_from_namespaces),
            ).network_access(),
        )
        objects += manifests.objects()
    if problems:
        raise BadInputError("\n".join(problems))
    return objects


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from .run import run  # noqa: PLC0415 - render must not pay for importing kopf

        return run(args)
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
