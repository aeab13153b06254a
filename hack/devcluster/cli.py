"""`devcluster up|down|status|env`: the local control plane for development and tests."""

from __future__ import annotations

import argparse
import sys
import time

from devcluster import cluster
from devcluster.config import ClusterPaths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster (idempotent); prints the kubeconfig path")
    up.add_argument(
        "--with",
        dest="addons",
        action="append",
        choices=["kueue", "node"],
        default=[],
        help="also start an add-on (off by default): kueue (its manager, CRDs and webhooks); "
        "node (a real node: containerd and the kubelet; needs root)",
    )
    sub.add_parser("down", help="stop every process the cluster started")
    sub.add_parser("status", help="show each process and whether it is healthy")
    sub.add_parser("env", help="print shell exports for KUBECONFIG and the pinned binaries")
    args = parser.parse_args(argv)
    paths = ClusterPaths.default()

    try:
        if args.command == "up":
            started = time.monotonic()
            kubeconfig = cluster.up(
                paths,
                log=lambda m: print(m, file=sys.stderr),
                with_kueue="kueue" in args.addons,
                with_node="node" in args.addons,
            )
            print(f"cluster ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
            print(kubeconfig)
        elif args.command == "down":
            cluster.down(paths, log=lambda m: print(m, file=sys.stderr))
        elif args.command == "status":
            rows = cluster.status(paths)
            for name, pid, healthy in rows:
                state = "healthy" if healthy else ("unhealthy" if pid else "stopped")
                print(f"{name:<26} {pid or '-':>8}  {state}")
            return 0 if all(h for _, _, h in rows) else 1
        elif args.command == "env":
            print(f"export KUBECONFIG={paths.kubeconfig}")
            print(f'export PATH="{paths.bin_dir}:$PATH"')
    except cluster.ClusterError as err:
        print(f"devcluster: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
