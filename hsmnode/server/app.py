"""Build one member's gRPC server: mutual TLS, the hsmnode services bound through the channel
table (channels.py) with safe request decoding, grpc health."""

from __future__ import annotations

import json
import logging
import os
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection

from hsmnode.pb import (
    admin_pb2,
    audit_pb2,
    auth_pb2,
    authorization_pb2,
    cluster_pb2,
    console_pb2,
    crypto_stream_pb2,
    debug_pb2,
    keyrings_pb2,
    keys_pb2,
    ntls_pb2,
    partition_backup_pb2,
)
from hsmnode.replication import Replicator
from hsmnode.server.admin import AdminServicer
from hsmnode.server.audit import AuditServicer
from hsmnode.server.auth import AuthServicer
from hsmnode.server.authorization import AuthorizationServicer
from hsmnode.server.channels import ChannelGuard, Classifier, allowed
from hsmnode.server.cluster import ClusterServicer
from hsmnode.server.console import ConsoleServicer
from hsmnode.server.crypto_stream import CryptoStreamServicer
from hsmnode.server.debug import DebugServicer
from hsmnode.server.keyrings import KeyringsServicer
from hsmnode.server.keys import KeysServicer
from hsmnode.server.ntls import NtlsServicer
from hsmnode.server.partition_backup import PartitionBackupServicer
from hsmnode.server.rpc import Servicer, safe_deserializer
from hsmnode.service.admin import AdminService
from hsmnode.service.audit import AuditService
from hsmnode.service.backup import BackupService
from hsmnode.service.cluster import ClusterService
from hsmnode.service.keyrings import KeyringService
from hsmnode.service.keys import KeyService
from hsmnode.service.login import LoginService
from hsmnode.service.mofn import MofnService
from hsmnode.service.ntls import NtlsService
from hsmnode.service.partition_backup import PartitionBackupService
from hsmnode.service.standing import Standing

# the full names of every service the TLS port serves: health reports each, reflection lists each
# (grpcurl list); the local console is served on its unix socket only
SERVICE_NAMES = tuple(
    service.full_name
    for module in (
        admin_pb2,
        audit_pb2,
        auth_pb2,
        authorization_pb2,
        cluster_pb2,
        crypto_stream_pb2,
        debug_pb2,
        keyrings_pb2,
        keys_pb2,
        ntls_pb2,
        partition_backup_pb2,
    )
    for service in module.DESCRIPTOR.services_by_name.values()
)
log = logging.getLogger(__name__)
MAX_WORKERS = 32
KNOWN_CLIENTS = "trusted-clients.json"  # in the data dir: the registered clients a member last trusted

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
    login: LoginService
    admin: AdminService
    ntls: NtlsService
    keys: KeyService
    keyrings: KeyringService
    mofn: MofnService
    backup: BackupService
    partition_backup: PartitionBackupService


class TrustList:
    """The member's live TLS trust list: the cluster CA plus every registered client certificate.

    gRPC asks for it on each new connection (dynamic server credentials), so a
    registration or revocation through any member takes effect on every member
    without a restart. Live connections are re-checked per call by the services.

    A restarted member replays its log and hears from a leader before its state lists every
    registered client (seconds): until then (`Replicator.is_ready`) it also trusts the clients it
    last listed, kept in `known` (the data dir's trusted-clients.json; certificates, no secrets).
    Registered applications then meet UNAVAILABLE, which the SDK retries, instead of a refused
    handshake, which it reports as an unregistered certificate (a new user: 5-6 s of Unauthenticated
    after a whole-cluster restart). A client revoked meanwhile passes the handshake only: every call
    checks the registration on a caught-up state.
    """

    def __init__(self, tls: TlsMaterial, replicator: Replicator, known: Path | None = None) -> None:
        self._tls = tls
        self._replicator = replicator
        self._served: tuple[str, ...] | None = None
        self._known = known
        self._remembered = _read_known(known)
        self._settled = False  # the state is caught up: trust it alone

    def _config(self, registered: tuple[str, ...]) -> grpc.ServerCertificateConfiguration:
        roots = self._tls.ca_pem + b"".join(pem.encode() for pem in registered)
        return grpc.ssl_server_certificate_configuration(
            [(self._tls.key_pem, self._tls.cert_pem)], root_certificates=roots
        )

    def _current(self) -> tuple[str, ...]:
        registered = tuple(self._replicator.read(lambda s: s.registered_certificates()))
        if not self._settled:
            if not self._replicator.is_ready():
                return tuple(dict.fromkeys(registered + self._remembered))
            self._settled = True
        if registered != self._remembered:
            self._remembered = registered
            _write_known(self._known, registered)
        return registered

    def initial(self) -> grpc.ServerCertificateConfiguration:
        self._served = self._current()
        return self._config(self._served)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        current = self._current()
        if current == self._served:
            return None
        self._served = current
        return self._config(current)


def _read_known(path: Path | None) -> tuple[str, ...]:
    """The client certificates (PEM) a member listed when it last ran; () when none are known."""
    if path is None:
        return ()
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return ()
    return tuple(pem for pem in found if isinstance(pem, str)) if isinstance(found, list) else ()


def _write_known(path: Path | None, registered: tuple[str, ...]) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(list(registered)))
        os.replace(tmp, path)
    except OSError as exc:  # the trust list stays right in memory; only a restart's first seconds miss it
        log.warning("cannot keep the trusted client list in %s: %s", path, exc)


def _service(module: ModuleType, name: str) -> ServiceDescriptor:
    descriptor: ServiceDescriptor = module.DESCRIPTOR.services_by_name[name]
    return descriptor


def bind(
    server: grpc.Server, servicer: Servicer[Any], service: ServiceDescriptor, classifier: Classifier
) -> None:
    """Register every method of `service` (from its proto descriptor) on `server`: requests decoded
    by `safe_deserializer` (or the servicer's `request_deserializers`), calls checked against the
    channel table by the `rpc` wrapper.

    Raises KeyError when a method has no row in the channel table (a member must not start so)."""
    handlers = {}
    for method in service.methods:
        allowed(f"{service.full_name}/{method.name}")
        if method.client_streaming and not method.server_streaming:
            raise TypeError(f"{service.full_name}/{method.name}: client streaming is not bound by bind()")
        # a server-streaming method returns an iterator from the same `rpc` wrapper (e.g. Cluster/Backup);
        # a bidirectional one checks its stream itself (rpc.open_stream: CryptoStream/Batch)
        factory = (
            grpc.stream_stream_rpc_method_handler
            if method.client_streaming
            else grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = factory(
            getattr(servicer, method.name),
            request_deserializer=servicer.request_deserializers.get(method.name, safe_deserializer)(
                message_factory.GetMessageClass(method.input_type)
            ),
            response_serializer=message_factory.GetMessageClass(method.output_type).SerializeToString,
        )
    servicer.channels = ChannelGuard(service.full_name, classifier)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def make_classifier(tls: TlsMaterial, replicator: Replicator) -> Classifier:
    def registered_name(fingerprint: str) -> str | None:
        client = replicator.read(lambda s: s.client_by_fingerprint(fingerprint))
        return None if client is None else client.name

    return Classifier(tls.ca_pem, registered_name, replicator.is_ready)


def create_console_server(
    socket_path: Path,
    tls: TlsMaterial,
    replicator: Replicator,
    standing: Standing,
    authorization: MofnService,
    interceptors: tuple[grpc.ServerInterceptor, ...] = (),
    cluster_id: str = "",
) -> grpc.Server:
    """The member's local console (DOMAIN.md §5): the Console service alone, on a unix socket that only
    the node's user reaches (it lives in the data dir, mode 0700; the socket itself is made 0600).
    `cluster_id`: the member's cluster; a client naming another one is refused (server/rpc.py)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="console"),
        interceptors=list(interceptors),
    )
    console = ConsoleServicer(replicator, authorization)
    console.standing = standing
    console.cluster_id = cluster_id
    bind(server, console, _service(console_pb2, "Console"), make_classifier(tls, replicator))
    if socket_path.is_socket():
        socket_path.unlink()  # left by an earlier run of this member
    port = server.add_secure_port(
        f"unix:{socket_path}", grpc.local_server_credentials(grpc.LocalConnectionType.UDS)
    )
    if port == 0:
        raise PortInUseError(f"cannot listen on the console socket {socket_path}")
    return server


def create_server(
    listen: str,
    tls: TlsMaterial,
    replicator: Replicator,
    standing: Standing,
    services: Services,
    *,
    reflection: bool = False,
    interceptors: tuple[grpc.ServerInterceptor, ...] = (),
) -> tuple[grpc.Server, health.HealthServicer]:
    """The member's server, not started. `reflection` exposes the API schema (grpc.reflection.v1alpha)
    to any client that passes mutual TLS: off by default, `[server] reflection = true` turns it on.
    `interceptors` see every call (the member's metrics and request log: hsmnode/observability)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="grpc"),
        interceptors=list(interceptors),
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=MAX_WORKERS * 8,
    )
    classifier = make_classifier(tls, replicator)
    bound: list[tuple[Servicer[Any], ServiceDescriptor]] = [
        (ClusterServicer(replicator, services.cluster, services.backup), _service(cluster_pb2, "Cluster")),
        (AuditServicer(replicator, services.audit), _service(audit_pb2, "Audit")),
        (DebugServicer(replicator, services.cluster), _service(debug_pb2, "Debug")),
        (AuthServicer(replicator, services.login), _service(auth_pb2, "Auth")),
        (AdminServicer(replicator, services.admin), _service(admin_pb2, "Admin")),
        (NtlsServicer(replicator, services.ntls), _service(ntls_pb2, "Ntls")),
        (KeysServicer(replicator, services.keys), _service(keys_pb2, "Keys")),
        (CryptoStreamServicer(replicator, services.keys), _service(crypto_stream_pb2, "CryptoStream")),
        (
            AuthorizationServicer(replicator, services.mofn),
            _service(authorization_pb2, "Authorization"),
        ),
        (KeyringsServicer(replicator, services.keyrings), _service(keyrings_pb2, "Keyrings")),
        (
            PartitionBackupServicer(replicator, services.partition_backup),
            _service(partition_backup_pb2, "PartitionBackup"),
        ),
    ]
    # the member's cluster: a client naming another one is refused (server/rpc.py); set on each
    # servicer, not on the class, as members of several clusters may share a process (tests)
    cluster_id = services.cluster.ctx.config.cluster_id
    for servicer, descriptor in bound:
        servicer.standing = standing
        servicer.cluster_id = cluster_id
        servicer.leader_endpoint = services.cluster.leader_endpoint
        bind(server, servicer, descriptor, classifier)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if reflection:
        grpc_reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, grpc_reflection.SERVICE_NAME), server
        )
    trust = TrustList(tls, replicator, services.cluster.ctx.config.data_dir / KNOWN_CLIENTS)
    credentials = grpc.dynamic_ssl_server_credentials(
        trust.initial(),
        trust.fetch,  # type: ignore[arg-type]  # grpc calls it for a change: None means none (the stub omits it)
        require_client_authentication=True,
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
