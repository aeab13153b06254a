"""`up` is idempotent and `down` leaves nothing of ours running. This test restarts the cluster,
so conftest runs it after every other test."""

from __future__ import annotations

import socket

import pytest

from devcluster import cluster as devcluster
from devcluster import config, processes, routes

pytestmark = [pytest.mark.cluster, pytest.mark.disruptive]

PORTS = (
    config.ETCD_CLIENT_PORT,
    config.ETCD_PEER_PORT,
    config.API_SERVER_PORT,
    config.CONTROLLER_MANAGER_PORT,
    config.SCHEDULER_PORT,
    config.KWOK_PORT,
)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_is_idempotent_and_down_leaves_no_process_or_port(cluster):
    before = {name: pid for name, pid, _ in devcluster.status(cluster.paths)}
    assert all(before.values()), before

    devcluster.up(cluster.paths, log=lambda _m: None)
    assert {name: pid for name, pid, _ in devcluster.status(cluster.paths)} == before
    if routes.can_manage():
        assert routes.blackholed() >= {
            str(config.KWOK_POD_CIDR),
            str(config.SERVICE_CIDR),
            str(config.REAL_NODE_POD_CIDR),
        }

    devcluster.down(cluster.paths, log=lambda _m: None)
    try:
        relay = ("devcluster.apirelay",)  # the real node's, a python module
        assert processes.processes_running_from(cluster.paths.bin_dir, relay) == []
        assert [port for port in PORTS if listening(port)] == []
        assert all(pid is None for _, pid, _ in devcluster.status(cluster.paths))
        assert routes.blackholed().isdisjoint(
            {str(config.KWOK_POD_CIDR), str(config.SERVICE_CIDR), str(config.REAL_NODE_POD_CIDR)}
        )
    finally:
        devcluster.up(cluster.paths, log=lambda _m: None)
