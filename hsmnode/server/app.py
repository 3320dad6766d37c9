"""Build one member's gRPC server: mutual TLS, the hsmnode services, grpc health."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hsmnode.pb import audit_pb2_grpc, cluster_pb2_grpc, debug_pb2_grpc
from hsmnode.replication import Replicator
from hsmnode.server.peers import PeerClients
from hsmnode.server.servicers import AuditServicer, ClusterServicer, DebugServicer
from hsmnode.service.audit import AuditService
from hsmnode.service.cluster import ClusterService

SERVICE_NAMES = ("hsmnode.pb.Cluster", "hsmnode.pb.Audit", "hsmnode.pb.Debug")
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


def create_server(
    listen: str,
    tls: TlsMaterial,
    replicator: Replicator,
    cluster: ClusterService,
    audit: AuditService,
    peers: PeerClients,
) -> tuple[grpc.Server, health.HealthServicer]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="grpc"),
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=MAX_WORKERS * 8,
    )
    cluster_pb2_grpc.add_ClusterServicer_to_server(ClusterServicer(replicator, cluster, peers), server)
    audit_pb2_grpc.add_AuditServicer_to_server(AuditServicer(replicator, audit), server)
    debug_pb2_grpc.add_DebugServicer_to_server(DebugServicer(replicator, cluster), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    credentials = grpc.ssl_server_credentials(
        [(tls.key_pem, tls.cert_pem)], root_certificates=tls.ca_pem, require_client_auth=True
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
