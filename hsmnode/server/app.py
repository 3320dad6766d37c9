"""Build one member's gRPC server: mutual TLS, the hsmnode services, grpc health."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection

from hsmnode.pb import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    authorization_pb2,
    authorization_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
    debug_pb2,
    debug_pb2_grpc,
    keyrings_pb2,
    keyrings_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    ntls_pb2,
    ntls_pb2_grpc,
)
from hsmnode.replication import Replicator
from hsmnode.server.access_servicers import AdminServicer, AuthServicer, NtlsServicer
from hsmnode.server.key_servicers import AuthorizationServicer, KeyringsServicer, KeysServicer
from hsmnode.server.peers import PeerClients
from hsmnode.server.rpc import Servicer
from hsmnode.server.servicers import AuditServicer, ClusterServicer, DebugServicer
from hsmnode.service.admin import AdminService
from hsmnode.service.audit import AuditService
from hsmnode.service.auth import AuthService
from hsmnode.service.authorization import AuthorizationService
from hsmnode.service.backup import BackupService
from hsmnode.service.cluster import ClusterService
from hsmnode.service.keyrings import KeyringService
from hsmnode.service.keys import KeyService
from hsmnode.service.ntls import NtlsService

# the full names of every service in proto/: health reports each, reflection lists each (grpcurl list)
SERVICE_NAMES = tuple(
    service.full_name
    for module in (
        admin_pb2,
        audit_pb2,
        auth_pb2,
        authorization_pb2,
        cluster_pb2,
        debug_pb2,
        keyrings_pb2,
        keys_pb2,
        ntls_pb2,
    )
    for service in module.DESCRIPTOR.services_by_name.values()
)
MAX_WORKERS = 32

SERVER_OPTIONS = [
    # Let SDK keepalive pings through (notes-pysyncobj-grpc.md §7).
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.so_reuseport", 0),
]


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


class PortInUseError(OSError):
    pass


@dataclass(frozen=True)
class Services:
    cluster: ClusterService
    audit: AuditService
    auth: AuthService
    admin: AdminService
    ntls: NtlsService
    keys: KeyService
    keyrings: KeyringService
    authorization: AuthorizationService
    backup: BackupService


class TrustList:
    """The member's live TLS trust list: the cluster CA plus every registered client certificate.

    gRPC asks for it on each new connection (dynamic server credentials), so a
    registration or revocation through any member takes effect on every member
    without a restart. Live connections are re-checked per call by the services.
    """

    def __init__(self, tls: TlsMaterial, replicator: Replicator) -> None:
        self._tls = tls
        self._replicator = replicator
        self._served: tuple[str, ...] | None = None

    def _config(self, registered: tuple[str, ...]) -> grpc.ServerCertificateConfiguration:
        roots = self._tls.ca_pem + b"".join(pem.encode() for pem in registered)
        return grpc.ssl_server_certificate_configuration(
            [(self._tls.key_pem, self._tls.cert_pem)], root_certificates=roots
        )

    def initial(self) -> grpc.ServerCertificateConfiguration:
        self._served = tuple(self._replicator.read(lambda s: s.registered_certificates()))
        return self._config(self._served)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        current = tuple(self._replicator.read(lambda s: s.registered_certificates()))
        if current == self._served:
            return None
        self._served = current
        return self._config(current)


def create_server(
    listen: str,
    tls: TlsMaterial,
    replicator: Replicator,
    services: Services,
    peers: PeerClients,
    *,
    reflection: bool = False,
) -> tuple[grpc.Server, health.HealthServicer]:
    """The member's server, not started. `reflection` exposes the API schema (grpc.reflection.v1alpha)
    to any client that passes mutual TLS: off by default, `[server] reflection = true` turns it on."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="grpc"),
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=MAX_WORKERS * 8,
    )
    cluster_pb2_grpc.add_ClusterServicer_to_server(
        ClusterServicer(replicator, services.cluster, peers, services.cluster.ctx, services.backup), server
    )
    audit_pb2_grpc.add_AuditServicer_to_server(AuditServicer(replicator, services.audit), server)
    debug_pb2_grpc.add_DebugServicer_to_server(DebugServicer(replicator, services.cluster), server)
    auth_pb2_grpc.add_AuthServicer_to_server(AuthServicer(replicator, services.auth), server)
    admin_pb2_grpc.add_AdminServicer_to_server(AdminServicer(replicator, services.admin), server)
    ntls_pb2_grpc.add_NtlsServicer_to_server(NtlsServicer(replicator, services.ntls), server)
    keys_pb2_grpc.add_KeysServicer_to_server(KeysServicer(replicator, services.keys), server)
    authorization_pb2_grpc.add_AuthorizationServicer_to_server(
        AuthorizationServicer(replicator, services.authorization), server
    )
    keyrings_pb2_grpc.add_KeyringsServicer_to_server(KeyringsServicer(replicator, services.keyrings), server)
    # one cluster per member process: a client naming another one is refused (server/rpc.py)
    Servicer.cluster_id = services.cluster.ctx.config.cluster_id
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if reflection:
        grpc_reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, grpc_reflection.SERVICE_NAME), server
        )
    trust = TrustList(tls, replicator)
    credentials = grpc.dynamic_ssl_server_credentials(
        trust.initial(), trust.fetch, require_client_authentication=True
    )
    try:
        port = server.add_secure_port(listen, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise PortInUseError(
            f"cannot listen for gRPC on {listen}: the port is in use or the address is not local"
        )
    return server, health_servicer


def set_serving(health_servicer: health.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, status)
