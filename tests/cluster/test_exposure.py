"""What the local cluster exposes: the API server listens on loopback only (pods reach it
through the node runner's relay on the bridge's gateway), and the runner's log endpoint serves
only the API server's client certificate."""

from __future__ import annotations

import socket
import ssl

import pytest

from devcluster import config
from tests.listeners import listeners

pytestmark = pytest.mark.cluster


def test_api_server_listens_on_loopback_and_the_pod_gateway_only(cluster):
    assert listeners(config.API_SERVER_PORT) == {"127.0.0.1", str(config.RUNNER_GATEWAY)}
    assert listeners(config.RUNNER_LOGS_PORT) == {str(config.RUNNER_GATEWAY)}


def tls_get(cert: tuple[str, str] | None) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the runner's serving certificate is throwaway
    if cert:
        context.load_cert_chain(*cert)
    address = (str(config.RUNNER_GATEWAY), config.RUNNER_LOGS_PORT)
    with socket.create_connection(address, timeout=10) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /containerLogs/default/none/none HTTP/1.0\r\n\r\n")
        return tls.recv(200).decode(errors="replace")


def test_log_endpoint_serves_only_the_api_server(cluster):
    pki = cluster.paths.pki
    # No client certificate: the handshake (or, with TLS 1.3, the first read) fails.
    try:
        reply = tls_get(None)
    except OSError:  # ssl.SSLError and connection resets are OSErrors
        reply = ""
    assert not reply.startswith("HTTP"), reply
    # A valid cluster certificate that is not the API server's: 403.
    admin = (str(pki / "admin.crt"), str(pki / "admin.key"))
    assert tls_get(admin).startswith("HTTP/1.0 403")
    # The API server's own client certificate gets through (404: no such pod).
    kubelet_client = (
        str(pki / "apiserver-kubelet-client.crt"),
        str(pki / "apiserver-kubelet-client.key"),
    )
    assert tls_get(kubelet_client).startswith("HTTP/1.0 404")
