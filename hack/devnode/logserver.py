"""The kubelet's container-log endpoint, so `kubectl logs [-f] [-p] [--tail N]` works for pods
on this node: the API server proxies to https://<node InternalIP>:<kubeletEndpoint port>.
It listens on the runner's gateway address only, with a throwaway self-signed certificate
(the local API server does not verify kubelet certificates: no --kubelet-certificate-authority),
and serves only the API server: a client must present the cluster CA's certificate for
``kube-apiserver-kubelet-client`` (the API server's --kubelet-client-certificate)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devnode.logs import LogsError, find_log

log = logging.getLogger(__name__)

FOLLOW_POLL_S = 0.2
IsRunning = Callable[[str, str, str], bool]  # (namespace, pod, container)


def self_signed(directory: Path, address: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"devnode@{address}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "serving.crt", directory / "serving.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def make_handler(state_dir: Path, is_running: IsRunning, stopping: threading.Event) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            log.debug("logs: " + format, *args)

        def do_GET(self) -> None:
            if not peer_is_api_server(self.connection):
                self.send_error(403, f"only {API_SERVER_CLIENT} may read logs here")
                return
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "containerLogs":
                self.send_error(404, "only /containerLogs/<ns>/<pod>/<container> is served")
                return
            _, ns, pod, container = parts
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            previous = query.get("previous") == "true"
            try:
                path = find_log(state_dir, ns, pod, container, previous)
                lines = int(query["tailLines"]) if "tailLines" in query else None
            except LogsError as exc:
                self.send_error(404, str(exc))
                return
            except ValueError:
                self.send_error(400, "tailLines must be an integer")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            with path.open("rb") as f:
                self.wfile.write(tail(f.read(), lines))
                if query.get("follow") != "true" or previous:
                    return
                while not stopping.is_set():
                    chunk = f.read()
                    if chunk:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    elif not is_running(ns, pod, container):
                        return
                    else:
                        time.sleep(FOLLOW_POLL_S)

    return Handler


API_SERVER_CLIENT = "kube-apiserver-kubelet-client"


def peer_is_api_server(connection: ssl.SSLSocket) -> bool:
    subject = dict(
        item for rdn in (connection.getpeercert() or {}).get("subject", ()) for item in rdn
    )
    return subject.get("commonName") == API_SERVER_CLIENT


class LogServer:
    def __init__(
        self,
        address: str,
        port: int,
        state_dir: Path,
        is_running: IsRunning,
        client_ca: str | None,
    ) -> None:
        self.stopping = threading.Event()
        cert, key = self_signed(state_dir / "pki", address)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if not client_ca:
            raise ValueError("the log endpoint needs the cluster CA to check its client")
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
        handler = make_handler(state_dir, is_running, self.stopping)
        self.server = ThreadingHTTPServer((address, port), handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="logs", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
