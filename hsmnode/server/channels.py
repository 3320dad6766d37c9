"""Which certificate class reaches which service (DOMAIN.md §3 "Channels"): the one table, and its check.

On a Luna appliance applications use NTLS and administrators the appliance shell:
separate channels. Here every member serves both over one mutual-TLS port, so the
class of the presented certificate decides what a connection may call:

    service                   cluster CA (admin, member)   NTLS client   local console
    hsmnode.pb.Cluster                  x                       .              .
      Cluster/Status, NodeStatus        x                       x              .     (discovery, health)
    hsmnode.pb.Audit                    x                       .              .
    hsmnode.pb.Debug                    x                       .              .
    hsmnode.pb.Auth                     x                       .              .     (appliance and HSM logins)
    hsmnode.pb.Admin                    x                       .              .
    hsmnode.pb.Ntls                     .                       x              .     (the client handshake)
    hsmnode.pb.Keys                     .                       x              .
    hsmnode.pb.CryptoStream             .                       x              .     (Keys' crypto, batched)
    hsmnode.pb.Keyrings                 .                       x              .
    hsmnode.pb.Authorization            .                       x              .
    hsmnode.pb.PartitionBackup          .                       x              .     (partition backup, restore)
    hsmnode.pb.Console                  .                       .              x     (unix socket on the member's host)

- cluster CA: a certificate the cluster CA issued directly (admin and member
  certificates; the signature is checked, not the issuer's name);
- NTLS client: a certificate registered with `hsmnode client register` (its
  fingerprint is in the replicated registry now: revocation is immediate);
- local console: the member's unix socket (gRPC local credentials), reachable only
  by the node's own user (the socket lives in the data dir, mode 0700).

A cluster-CA certificate cannot be registered as an NTLS client, so the classes never
overlap. Every method of every service in the proto descriptors has a row here; a
member refuses to start otherwise.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from hsmnode.crypto import certificate_common_name, certificate_fingerprint, issued_by
from hsmnode.service.errors import DomainError, ErrorCode


class CertificateClass(enum.StrEnum):
    CLUSTER_CA = "certificate the cluster CA issued (admin or member)"
    NTLS_CLIENT = "registered NTLS client certificate"
    LOCAL_CONSOLE = "local console"


CA, NTLS, LOCAL = CertificateClass.CLUSTER_CA, CertificateClass.NTLS_CLIENT, CertificateClass.LOCAL_CONSOLE

# service, or "service/method" for a method that differs from its service
TABLE: dict[str, frozenset[CertificateClass]] = {
    "hsmnode.pb.Cluster": frozenset({CA}),
    "hsmnode.pb.Cluster/Status": frozenset({CA, NTLS}),
    "hsmnode.pb.Cluster/NodeStatus": frozenset({CA, NTLS}),
    "hsmnode.pb.Audit": frozenset({CA}),
    "hsmnode.pb.Debug": frozenset({CA}),
    "hsmnode.pb.Auth": frozenset({CA}),
    "hsmnode.pb.Admin": frozenset({CA}),
    "hsmnode.pb.Ntls": frozenset({NTLS}),
    "hsmnode.pb.Keys": frozenset({NTLS}),
    "hsmnode.pb.CryptoStream": frozenset({NTLS}),
    "hsmnode.pb.Keyrings": frozenset({NTLS}),
    "hsmnode.pb.Authorization": frozenset({NTLS}),
    "hsmnode.pb.PartitionBackup": frozenset({NTLS}),
    "hsmnode.pb.Console": frozenset({LOCAL}),
}

_HOW = {
    CA: "administer with the admin certificate (the profile's default identity)",
    NTLS: "applications use a registered NTLS client certificate (hsmnode client register; --client NAME)",
    LOCAL: "use the member's local console (hsmnode console ..., on the member's host)",
}


def allowed(full_method: str) -> frozenset[CertificateClass]:
    """The certificate classes that reach "/package.Service/Method" (or "package.Service/Method")."""
    name = full_method.lstrip("/")
    service = name.partition("/")[0]
    if name in TABLE:
        return TABLE[name]
    if service in TABLE:
        return TABLE[service]
    raise KeyError(f"{name} has no row in the channel table (hsmnode/server/channels.py)")


@dataclass(frozen=True)
class Peer:
    """The other end of a connection: its certificate class and, for TLS, who it is."""

    cls: CertificateClass
    fingerprint: str = ""
    common_name: str = ""
    client_name: str = ""  # the registered NTLS client's name

    def describe(self) -> str:
        if self.cls is NTLS:
            return f"a {self.cls} (client '{self.client_name}')"
        if self.cls is CA:
            return f"a {self.cls}, CN '{self.common_name}'"
        return "the local console"


class Classifier:
    """Sorts connections into certificate classes; the cluster-CA check is cached per certificate."""

    def __init__(
        self,
        ca_pem: bytes,
        registered_name: Callable[[str], str | None],
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        """`registered_name(fingerprint)`: the registered NTLS client's name, None when unknown;
        `ready()`: whether the member's state has caught up (a restarted member's does not list
        its clients until then, so an unknown certificate is answered UNAVAILABLE, not refused)."""
        self._ca_pem = ca_pem
        self._registered_name = registered_name
        self._ready = ready
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[str, str, bool]] = {}

    def _facts(self, pem: bytes) -> tuple[str, str, bool]:
        with self._lock:
            found = self._cache.get(pem)
        if found is None:
            found = (certificate_fingerprint(pem), certificate_common_name(pem), issued_by(pem, self._ca_pem))
            with self._lock:
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[pem] = found
        return found

    def issued_by_cluster_ca(self, pem: bytes) -> bool:
        return self._facts(pem)[2]

    def classify(self, context: grpc.ServicerContext) -> Peer:
        auth = context.auth_context()
        if (auth.get("transport_security_type") or [b""])[0] == b"local":
            return Peer(LOCAL)
        pem = bytes((auth.get("x509_pem_cert") or [b""])[0])
        if not pem:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "no client certificate on this connection")
        fingerprint, common_name, issued = self._facts(pem)
        if issued:
            return Peer(CA, fingerprint, common_name)
        return self._registered(fingerprint, common_name)

    def reclassify(self, peer: Peer) -> Peer:
        """`peer` (classified on this connection before) as it stands now: a connection's certificate
        does not change, its class does only when a registration is revoked (NTLS), so only that is
        looked up again. Raises what `classify` raises for a registration revoked since."""
        if peer.cls is NTLS:
            return self._registered(peer.fingerprint, peer.common_name)
        return peer

    def _registered(self, fingerprint: str, common_name: str) -> Peer:
        name = self._registered_name(fingerprint)
        if name is None and not self._ready():
            # a restarted member replaying its log (a new user: Unauthenticated and
            # CKR_USER_NOT_LOGGED_IN for up to 1.5 s after a whole-cluster restart)
            raise DomainError(
                ErrorCode.UNAVAILABLE,
                f"this member is catching up after a restart and does not know client certificate "
                f"{fingerprint[:16]}... yet: try another member, or again in a moment",
            )
        if name is None:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED,
                f"client certificate {fingerprint[:16]}... is not registered with this cluster "
                "(or its registration was revoked): an admin must register it (hsmnode client register)",
            )
        return Peer(NTLS, fingerprint, common_name, name)


class ChannelGuard:
    """The check the `rpc` wrapper runs first: may this connection's certificate class call this method?"""

    def __init__(self, service: str, classifier: Classifier) -> None:
        self.service = service
        self._classifier = classifier

    def check(self, method: str, context: grpc.ServicerContext) -> Peer:
        return self._allowed(method, self._classifier.classify(context))

    def recheck(self, method: str, peer: Peer) -> Peer:
        """`check` again for a connection classified as `peer` before (a stream's later message):
        the same answer, without reading the connection's certificate again (Classifier.reclassify)."""
        return self._allowed(method, self._classifier.reclassify(peer))

    def _allowed(self, method: str, peer: Peer) -> Peer:
        full = f"{self.service}/{method}"
        classes = allowed(full)
        if peer.cls not in classes:
            takes = " or ".join(str(c) for c in sorted(classes))
            raise DomainError(
                ErrorCode.PERMISSION_DENIED,
                f"{full} takes a {takes}; this connection presents {peer.describe()}. "
                f"{_HOW[sorted(classes)[0]][:1].upper()}{_HOW[sorted(classes)[0]][1:]}",
            )
        return peer
