"""``densenet-operator run``: the kopf operator process."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import threading

import kopf
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from . import handlers
from .kube import Cluster, Transport
from .leader import LeaderElector, LeaseConfig, identity
from .opmetrics import OperatorMetrics
from .reconcile import CREATORS, Reconciler
from .settings import Settings


def settings_from(args: argparse.Namespace) -> Settings:
    fields = {f.name for f in dataclasses.fields(Settings)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["metrics_from_namespaces"] = tuple(args.metrics_from_namespaces)
    return Settings(**values)


def _transport() -> Transport:
    configuration = kube_client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)
    # One connection per handler and creator thread, or they queue for the default pool of 10.
    configuration.connection_pool_maxsize = handlers.WORKERS + CREATORS
    return Transport(configuration)


def run(args: argparse.Namespace) -> int:
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        transport = _transport()
    except kube_config.ConfigException as exc:
        print(f"densenet-operator: error: no cluster credentials: {exc}", file=sys.stderr)
        return 2
    metrics = OperatorMetrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    settings = settings_from(args)
    reconciler = Reconciler(Cluster(transport, settings.cache_seconds), settings, metrics)
    registry = kopf.OperatorRegistry()
    handlers.register(registry)
    namespaces = args.namespaces or []
    # One flag for every stop: kopf's cleanup sets it (reconciler.stop) on SIGTERM, a lost Lease
    # sets it to stop kopf. kopf waits on a threading.Event in an executor thread, so a flag that
    # nothing sets on SIGTERM would hold the process at exit.
    stop = reconciler.stopped
    lost = threading.Event()
    thread: threading.Thread | None = None
    if args.leader_election_namespace:
        elector = _elector(transport, args, settings)

        def stopped() -> None:
            reconciler.set_active(False)
            lost.set()
            stop.set()

        thread = threading.Thread(
            target=elector.run,
            args=(stop, lambda: reconciler.set_active(True), stopped),
            name="leader-election",
            daemon=True,
        )
        thread.start()
    else:
        logging.getLogger("densenet_operator").info("no leader election: run one replica only")
        reconciler.set_active(True)
    try:
        kopf.run(
            registry=registry,
            memo=kopf.Memo(reconciler=reconciler),
            standalone=True,  # kopf's peering is not used: leader.py says why
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness or None,
            stop_flag=stop,
        )
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=5)  # lets it release the Lease
    return 1 if lost.is_set() else 0


def _elector(transport: Transport, args: argparse.Namespace, settings: Settings) -> LeaderElector:
    duration = settings.lease_duration
    config = LeaseConfig(
        namespace=args.leader_election_namespace,
        name=args.leader_election_lease,
        duration=duration,
        renew_deadline=duration * 2 / 3,
        retry=max(duration / 7.5, 0.2),
    )
    return LeaderElector(transport, config, identity())
