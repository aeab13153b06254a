"""What the local cluster exposes: the API server listens on loopback only; the real node's pods
reach it through the node's relay on their bridge's gateway, which runs only while the node
does (tests/images/test_real_node.py checks the relay and the kubelet's port)."""

from __future__ import annotations

import pytest

from devcluster import config
from tests.listeners import listeners

pytestmark = pytest.mark.cluster


def test_api_server_listens_on_loopback_and_the_node_relay_only(cluster):
    found = listeners(config.API_SERVER_PORT)
    assert "127.0.0.1" in found
    assert found <= {"127.0.0.1", config.API_SERVER_ADVERTISE}, found
