"""``densenet-operator run``: the kopf operator process."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import kopf
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from . import handlers
from .kube import Cluster, Transport
from .opmetrics import OperatorMetrics
from .reconcile import Reconciler
from .settings import Settings


def settings_from(args: argparse.Namespace) -> Settings:
    fields = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in vars(args).items() if k in fields})


def _transport() -> Transport:
    configuration = kube_client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)
    # One connection per handler thread, or the threads queue for the default pool of 10.
    configuration.connection_pool_maxsize = handlers.WORKERS
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
    reconciler = Reconciler(Cluster(transport), settings_from(args), metrics)
    registry = kopf.OperatorRegistry()
    handlers.register(registry)
    namespaces = args.namespaces or []
    kopf.run(
        registry=registry,
        memo=kopf.Memo(reconciler=reconciler),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
    )
    return 0
