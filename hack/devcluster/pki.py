"""Certificates and keys of the local cluster: one CA, the API server's serving certificate,
client certificates for each component, and the service-account signing key pair."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devcluster import config

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate: file stem, user name (CN) and groups (O)."""

    stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("admin", "densenet-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")
# The API server's identity towards the kubelets (--kubelet-client-*): logs, exec.
KUBELET_CLIENT = ClientIdentity(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
)
# The real node's kubelet (the Node authorizer knows it by this name and group).
KUBELET = ClientIdentity("kubelet", f"system:node:{config.REAL_NODE_NAME}", ("system:nodes",))
# The real node's kube-proxy (bound to the bootstrap role system:node-proxier by name) and
# CoreDNS (bound by realnode.py to the rules its kubernetes plugin needs).
KUBE_PROXY = ClientIdentity("kube-proxy", "system:kube-proxy")
COREDNS = ClientIdentity("coredns", "densenet:coredns")
DEVICE_PLUGIN = ClientIdentity("fake-device-plugin", "densenet:fake-device-plugin")
CLIENTS = (
    ADMIN, CONTROLLER_MANAGER, SCHEDULER, KUBELET_CLIENT, KUBELET, KUBE_PROXY, COREDNS,
    DEVICE_PLUGIN,
)  # fmt: skip


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def serving_names() -> tuple[list[str], list[str]]:
    """DNS names and IPs the API server's certificate is valid for."""
    dns = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    ips = ["127.0.0.1", config.API_SERVER_ADVERTISE, str(next(config.SERVICE_CIDR.hosts()))]
    return dns, ips


def ensure_pki(pki: Path) -> None:
    """Create every certificate and key that is missing. Existing ones are kept, so clients
    holding the old kubeconfig keep working across `down`/`up`."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key_path, ca_cert_path = pki / "ca.key", pki / "ca.crt"
    if not ca_cert_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("densenet-devcluster-ca")
        ca_cert = (
            _builder(ca_name, ca_name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(ca_key_path, ca_key)
        _write_cert(ca_cert_path, ca_cert)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())

    def issue(
        stem: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: x509.SubjectAlternativeName | None = None,
    ) -> None:
        if (pki / f"{stem}.crt").exists():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(subject, ca_cert.subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        _write_key(pki / f"{stem}.key", key)
        _write_cert(pki / f"{stem}.crt", builder.sign(ca_key, hashes.SHA256()))

    dns, ips = serving_names()
    sans = x509.SubjectAlternativeName(
        [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    )
    issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, sans)
    # Webhook servers the cluster starts itself (Kueue's), which the API server calls on
    # loopback.
    loopback = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    issue("webhook", _name("devcluster-webhooks"), ExtendedKeyUsageOID.SERVER_AUTH, loopback)
    # The real node's kubelet serves on its bridge's gateway (realnode.py).
    kubelet_names = x509.SubjectAlternativeName(
        [x509.DNSName(config.REAL_NODE_NAME), x509.IPAddress(config.REAL_NODE_GATEWAY)]
    )
    issue(
        "kubelet-serving",
        _name(f"system:node:{config.REAL_NODE_NAME}", ("system:nodes",)),
        ExtendedKeyUsageOID.SERVER_AUTH,
        kubelet_names,
    )
    for client in CLIENTS:
        issue(client.stem, _name(client.user, client.groups), ExtendedKeyUsageOID.CLIENT_AUTH)

    if not (pki / "sa.key").exists():
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(pki / "sa.key", sa_key)
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def kubeconfig_yaml(pki: Path, client: ClientIdentity, server: str) -> str:
    """A kubeconfig that authenticates as `client` with file references into `pki`."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: devcluster
  cluster:
    server: {server}
    certificate-authority: {pki / "ca.crt"}
users:
- name: {client.stem}
  user:
    client-certificate: {pki / f"{client.stem}.crt"}
    client-key: {pki / f"{client.stem}.key"}
contexts:
- name: devcluster
  context:
    cluster: devcluster
    user: {client.stem}
    namespace: default
current-context: devcluster
"""
