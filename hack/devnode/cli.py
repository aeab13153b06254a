"""`python -m devnode run|logs`: the node runner that `devcluster up` starts, and its log reader."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import sys
from pathlib import Path

from devcluster.config import (
    API_SERVER_POD_HOST,
    RUNNER_BRIDGE,
    RUNNER_GATEWAY,
    RUNNER_LOGS_PORT,
    RUNNER_POD_CIDR,
    RUNNER_SPARE_POD_CIDR,
    ClusterPaths,
)
from devnode.images import ImageMapError, load_rules
from devnode.logs import LogsError, find_log, print_log
from devnode.netns import PodNetwork
from devnode.node import NodeSpec
from devnode.runner import Runner, RunnerConfig, RunnerError, install_signal_handlers

DEFAULT_NODE = "devnode-0"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


class UsageError(Exception):
    pass


def _total_memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) // 1024}Mi"
    return "8Gi"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devnode", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="register a Node and run the pods bound to it (needs root)")
    run.add_argument("--kubeconfig", type=Path, default=None, help="default: the local cluster's")
    run.add_argument("--node-name", default=DEFAULT_NODE)
    run.add_argument("--state-dir", type=Path, default=None, help="default: <cluster>/<node-name>")
    run.add_argument("--cpu", default=str(os.cpu_count() or 1), help="cpu capacity")
    run.add_argument("--memory", default=_total_memory(), help="memory capacity, e.g. 16Gi")
    run.add_argument("--max-pods", type=int, default=110)
    run.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--taint", action="append", default=[], metavar="KEY=VALUE:EFFECT")
    run.add_argument("--bridge", default=RUNNER_BRIDGE, help="host bridge (at most 6 characters)")
    run.add_argument("--pod-cidr", default=str(RUNNER_POD_CIDR))
    run.add_argument("--gateway", default=None, help="bridge address; default: first in the CIDR")
    run.add_argument(
        "--logs-port", type=int, default=RUNNER_LOGS_PORT, help="for `kubectl logs`; 0: off"
    )
    run.add_argument("--image-map", type=Path, default=None, help="JSON/YAML image rules")
    run.add_argument("--shutdown-grace", type=float, default=10.0, metavar="SECONDS")
    run.add_argument("-v", "--verbose", action="store_true")
    logs = sub.add_parser("logs", help="print a container's output")
    logs.add_argument("pod", metavar="NAMESPACE/POD")
    logs.add_argument("-c", "--container", default=None)
    logs.add_argument(
        "-p", "--previous", action="store_true", help="the run before the last restart"
    )
    logs.add_argument("--state-dir", type=Path, default=None)
    logs.add_argument("--node-name", default=DEFAULT_NODE)
    return p


def _state_dir(args: argparse.Namespace) -> Path:
    return args.state_dir or ClusterPaths.default().root / args.node_name


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k:
            raise UsageError(f"{flag} {v!r}: expected KEY=VALUE")
        out[k] = val
    return out


def _taints(values: list[str]) -> tuple[dict, ...]:
    taints = []
    for v in values:
        kv, sep, effect = v.rpartition(":")
        k, _, val = kv.partition("=")
        if not sep or not k or effect not in _EFFECTS:
            raise UsageError(f"--taint {v!r}: expected KEY=VALUE:EFFECT, EFFECT one of {_EFFECTS}")
        taints.append({"key": k, "value": val, "effect": effect})
    return tuple(taints)


def build_config(args: argparse.Namespace) -> RunnerConfig:
    if not _DNS1123.match(args.node_name) or len(args.node_name) > 253:
        raise UsageError(
            f"--node-name {args.node_name!r}: use lower-case letters, digits, '-', '.' (RFC 1123)"
        )
    if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", args.bridge):
        raise UsageError(f"--bridge {args.bridge!r}: 1-6 lower-case letters/digits, letter first")
    try:
        cidr = ipaddress.ip_network(args.pod_cidr)
    except ValueError as exc:
        raise UsageError(f"--pod-cidr {args.pod_cidr!r}: {exc}") from None
    if not isinstance(cidr, ipaddress.IPv4Network) or cidr.num_addresses < 4:
        raise UsageError(f"--pod-cidr {args.pod_cidr!r}: need an IPv4 network of /30 or larger")
    default_gw = RUNNER_GATEWAY if cidr == RUNNER_POD_CIDR else next(cidr.hosts())
    try:
        gateway = ipaddress.IPv4Address(args.gateway) if args.gateway else default_gw
    except ValueError as exc:
        raise UsageError(f"--gateway {args.gateway!r}: {exc}") from None
    if gateway not in cidr:
        raise UsageError(f"--gateway {gateway}: not inside --pod-cidr {cidr}")
    if not 0 <= args.logs_port <= 65535:
        raise UsageError(f"--logs-port {args.logs_port}: must be 0-65535")
    exclude = tuple(net for net in (RUNNER_SPARE_POD_CIDR,) if net != cidr and net.subnet_of(cidr))
    try:
        rules = load_rules(args.image_map)
    except ImageMapError as exc:
        raise UsageError(str(exc)) from None
    node = NodeSpec(
        name=args.node_name,
        ip=str(gateway),
        cpu=args.cpu,
        memory=args.memory,
        pods=args.max_pods,
        labels=_pairs(args.label, "--label"),
        taints=_taints(args.taint),
        logs_port=args.logs_port,
    )
    kubeconfig = args.kubeconfig or ClusterPaths.default().kubeconfig
    if not kubeconfig.is_file():
        raise UsageError(f"--kubeconfig {kubeconfig}: no such file (is the cluster up?)")
    api_host = API_SERVER_POD_HOST if cidr == RUNNER_POD_CIDR else str(gateway)
    return RunnerConfig(
        kubeconfig=kubeconfig,
        node=node,
        net=PodNetwork(args.bridge, cidr, gateway),
        exclude=exclude,
        state_dir=_state_dir(args),
        rules=rules,
        api_host=api_host,
        shutdown_grace_s=args.shutdown_grace,
    )


def cmd_run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise UsageError("run: must run as root (it creates network namespaces); use sudo")
    cfg = build_config(args)
    runner = Runner(cfg)
    install_signal_handlers(runner)
    try:
        runner.run()
    except RunnerError as exc:
        print(f"devnode: error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    ns, sep, pod = args.pod.partition("/")
    if not sep or not ns or not pod:
        raise UsageError(f"logs {args.pod!r}: expected NAMESPACE/POD")
    try:
        print_log(find_log(_state_dir(args), ns, pod, args.container, args.previous))
    except LogsError as exc:
        raise UsageError(str(exc)) from None
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s devnode %(levelname)s %(message)s",
    )
    try:
        return cmd_run(args) if args.command == "run" else cmd_logs(args)
    except UsageError as exc:
        print(f"devnode: error: {exc}", file=sys.stderr)
        return 2
