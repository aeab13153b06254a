"""Command lines of the control-plane processes. Pure: paths in, argv out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devcluster import config
from devcluster.config import ClusterPaths


@dataclass(frozen=True)
class Component:
    """One process of the local cluster."""

    name: str
    argv: list[str]
    # HTTPS or HTTP URL that answers 200 once the process is ready; None: started is ready.
    health_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # A command that prepares something (a mount namespace) and then execs argv: its programs
    # (wrapper_programs) are what /proc/<pid>/cmdline shows until that exec.
    wrapper: list[str] = field(default_factory=list)
    wrapper_programs: tuple[str, ...] = ()


def kubeconfig_for(paths: ClusterPaths, stem: str) -> Path:
    return paths.root / f"{stem}.kubeconfig"


def etcd(paths: ClusterPaths) -> Component:
    client = f"http://127.0.0.1:{config.ETCD_CLIENT_PORT}"
    peer = f"http://127.0.0.1:{config.ETCD_PEER_PORT}"
    return Component(
        "etcd",
        [
            str(paths.bin_dir / "etcd"),
            "--name=devcluster",
            f"--data-dir={paths.etcd_data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=devcluster={peer}",
            "--listen-metrics-urls=",
            # A throwaway test cluster: durability is not worth the fsync latency.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        health_url=f"{client}/health",
    )


# The API server's audit policy: Metadata (who, verb, object, response code; no bodies) for
# requests by ServiceAccounts outside kube-system, which is what the tests run components as
# (the chart's operator in tests/deploy/test_rbac_audit.py); nothing for the control plane's
# own controllers, the admin kubeconfig or the nodes, which would only fill the file.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


def kube_apiserver(paths: ClusterPaths) -> Component:
    pki = paths.pki
    return Component(
        "kube-apiserver",
        [
            str(paths.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{config.ETCD_CLIENT_PORT}",
            f"--secure-port={config.API_SERVER_PORT}",
            # Loopback only: the real node's pods reach it through a relay on their bridge's
            # gateway, the advertised address (the `kubernetes` Service's endpoint).
            "--bind-address=127.0.0.1",
            f"--advertise-address={config.API_SERVER_ADVERTISE}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            # A kubelet is dialled at its InternalIP only: by default a node's Hostname comes
            # first, and resolving it asks the host's DNS servers, which are off the machine.
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # On top of the defaults: a client may set blockOwnerDeletion only on an owner
            # whose finalizers it may update, as on OpenShift and other hardened clusters, so
            # the chart's RBAC is tested where that grant matters.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--audit-policy-file={paths.audit_policy}",
            f"--audit-log-path={paths.audit_log}",
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=0",
        ],
        health_url=f"https://127.0.0.1:{config.API_SERVER_PORT}/readyz",
    )


def kube_controller_manager(paths: ClusterPaths) -> Component:
    pki = paths.pki
    kubeconfig = kubeconfig_for(paths, "controller-manager")
    return Component(
        "kube-controller-manager",
        [
            str(paths.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--secure-port={config.CONTROLLER_MANAGER_PORT}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            # Without cloud routes or IPAM there is nothing for these to do.
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
            "--v=0",
        ],
        health_url=f"https://127.0.0.1:{config.CONTROLLER_MANAGER_PORT}/healthz",
    )


def kube_scheduler(paths: ClusterPaths) -> Component:
    kubeconfig = kubeconfig_for(paths, "scheduler")
    return Component(
        "kube-scheduler",
        [
            str(paths.bin_dir / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--secure-port={config.SCHEDULER_PORT}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--v=0",
        ],
        health_url=f"https://127.0.0.1:{config.SCHEDULER_PORT}/healthz",
    )


OWN_KWOK_STAGES = Path(__file__).resolve().parent / "kwok"


def kwok_stage_files(kwok_version: str) -> list[Path]:
    stages = config.cache_root() / f"kwok-stages-{kwok_version}" / "stage"
    return [
        stages / "node" / "fast" / "node-initialize.yaml",
        stages / "node" / "heartbeat-with-lease" / "node-heartbeat-with-lease.yaml",
        stages / "pod" / "fast" / "pod-ready.yaml",
        stages / "pod" / "fast" / "pod-complete.yaml",
        # Ours: a deleted pod that a finalizer holds turns terminal first, as on a kubelet.
        OWN_KWOK_STAGES / "pod-terminate-on-delete.yaml",
        OWN_KWOK_STAGES / "pod-delete.yaml",
    ]


def kwok(paths: ClusterPaths, kwok_version: str) -> Component:
    argv = [
        str(paths.bin_dir / "kwok"),
        f"--kubeconfig={paths.kubeconfig}",
        f"--manage-nodes-with-label-selector={config.FAKE_NODE_LABEL}=true",
        f"--cidr={config.KWOK_POD_CIDR}",
        # A fake node's address is loopback, so anything that dials a fake kubelet (kubectl
        # logs on a fake pod, say) fails locally instead of sending packets off the machine.
        "--node-ip=127.0.0.1",
        f"--node-port={config.KWOK_PORT}",
        f"--server-address=127.0.0.1:{config.KWOK_PORT}",
    ]
    argv += [f"--config={f}" for f in kwok_stage_files(kwok_version)]
    return Component("kwok", argv, health_url=f"http://127.0.0.1:{config.KWOK_PORT}/healthz")
