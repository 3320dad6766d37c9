"""HsmClient: typed calls to an hsmnode cluster with failover between members."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from hsmnode.client._errors import HsmError, Unauthenticated, Unavailable, error_from_rpc
from hsmnode.client._profile import Tls, load_profile
from hsmnode.client._tls_probe import certificate_refused
from hsmnode.client._types import ClusterStatus, MemberStatus, NodeStatus, Slot
from hsmnode.pb import (
    auth_pb2,
    auth_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
    debug_pb2,
    debug_pb2_grpc,
    ntls_pb2,
    ntls_pb2_grpc,
)

if TYPE_CHECKING:
    from hsmnode.client._sessions import ApplianceSession, PartitionSession

SESSION_KEY = "x-hsm-session"
MIN_INDEX_KEY = "x-hsm-min-index"
APPLIED_INDEX_KEY = "x-hsm-applied-index"
_FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def new_request_id() -> str:
    return uuid.uuid4().hex


class HsmClient:
    """A client of every member in `endpoints`, presenting one TLS client certificate.

    A call goes to the member that last answered; on UNAVAILABLE or a deadline it
    goes to the next one. A write whose outcome is unknown (ABORTED) is retried
    with the same request_id, so the cluster applies it at most once. Every call
    sends the highest applied index this client has seen, so a member that is
    behind never answers with older state than the client already observed.

    With an admin certificate (from the cluster CA) use `login()`; with a
    registered client certificate use the NTLS handshake: `list_slots()`,
    `open_session()`.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        tls: Tls,
        *,
        timeout: float = 5.0,
        discover: bool = True,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
        probe_interval: float = 1.0,
    ) -> None:
        """`discover`: after the first answer, learn every member from cluster status.
        `interceptors`: e.g. a FaultInjector. `probe_interval`: how long a member that failed
        stays out of the rotation before it is tried again."""
        if not endpoints or not all(isinstance(e, str) and e.rpartition(":")[2].isdigit() for e in endpoints):
            raise ValueError(f"endpoints must be a non-empty list of host:port, got {list(endpoints)!r}")
        tls.check()
        self.endpoints = tuple(dict.fromkeys(endpoints))
        self._discover = discover and len(self.endpoints) > 1
        self._interceptors = tuple(interceptors)
        self.probe_interval = probe_interval
        self._down_until: dict[str, float] = {}
        self._rotation = 0
        self.answered: dict[str, int] = {}  # successful answers per member: who served this client
        self.timeout = timeout
        self.tls = tls
        self._creds = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._preferred = 0
        self._seen_index = 0

    @classmethod
    def from_profile(cls, path: str | Path, *, timeout: float = 5.0, identity: str = "admin") -> HsmClient:
        """identity "admin" uses the profile's admin certificate; "client" its default NTLS client
        certificate; any other name one of the profile's named NTLS clients."""
        profile = load_profile(path)
        tls = (
            profile.tls
            if identity == "admin"
            else profile.client_tls(None if identity == "client" else identity)
        )
        return cls(profile.endpoints, tls, timeout=timeout)

    def __enter__(self) -> HsmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    @property
    def seen_index(self) -> int:
        return self._seen_index

    @property
    def fingerprint(self) -> str:
        from hsmnode.client._profile import certificate_der

        return hashlib.sha256(certificate_der(self.tls.cert_pem)).hexdigest()

    # --- cluster ----------------------------------------------------------

    def cluster_status(self) -> ClusterStatus:
        r = self.call(cluster_pb2_grpc.ClusterStub, "Status", cluster_pb2.ClusterStatusRequest())
        return ClusterStatus(
            cluster_id=r.cluster_id,
            leader=r.leader,
            term=r.term,
            members=tuple(
                MemberStatus(m.id, m.address, m.role, m.applied_index, m.raft_address, m.state_digest, m.lag)
                for m in r.members
            ),
        )

    def node_status(self) -> NodeStatus:
        """The status of whichever member answers (use a one-endpoint client to pick the member)."""
        r = self.call(cluster_pb2_grpc.ClusterStub, "NodeStatus", cluster_pb2.NodeStatusRequest())
        return NodeStatus(
            id=r.id,
            cluster_id=r.cluster_id,
            address=r.address,
            raft_address=r.raft_address,
            role=r.role,
            term=r.term,
            leader=r.leader,
            commit_index=r.commit_index,
            applied_index=r.applied_index,
            state_digest=r.state_digest,
            has_quorum=r.has_quorum,
            ready=r.ready,
            replicated_cluster_id=r.replicated_cluster_id,
            node_certificate=r.node_certificate,
            members=r.members,
        )

    # --- appliance logins -------------------------------------------------------

    def login(
        self, user: str, password: str, *, new_password: str = "", request_id: str | None = None
    ) -> ApplianceSession:
        """Log in as an appliance user (send new_password when the current one has expired)."""
        from hsmnode.client._sessions import ApplianceSession

        r = self.call(
            auth_pb2_grpc.AuthStub,
            "Login",
            auth_pb2.LoginRequest(
                request_id=request_id or new_request_id(),
                user=user,
                password=password,
                new_password=new_password,
            ),
            write=True,
        )
        return ApplianceSession(self, r.token, r.subject, r.role, r.expires_ms)

    def resume(self, token: str) -> ApplianceSession:
        """An appliance session from a token obtained earlier (e.g. cached by the CLI)."""
        from hsmnode.client._sessions import ApplianceSession

        return ApplianceSession(self, token, "", "", 0)

    def change_password(
        self, user: str, old_password: str, new_password: str, *, request_id: str | None = None
    ) -> None:
        self.call(
            auth_pb2_grpc.AuthStub,
            "ChangePassword",
            auth_pb2.ChangePasswordRequest(
                request_id=request_id or new_request_id(),
                user=user,
                old_password=old_password,
                new_password=new_password,
            ),
            write=True,
        )

    # --- the NTLS handshake -------------------------------------------------------

    def list_slots(self) -> tuple[str, list[Slot]]:
        """(this client's registered name, the partitions and keyrings assigned to it)."""
        r = self.call(ntls_pb2_grpc.NtlsStub, "ListSlots", ntls_pb2.ListSlotsRequest())
        return r.client, [
            Slot(
                s.partition, s.label, s.initialized, s.activation_required, s.activated, s.kind or "partition"
            )
            for s in r.slots
        ]

    def open_session(
        self, partition: str, password: str, *, role: str = "CO", request_id: str | None = None
    ) -> PartitionSession:
        """Open a session on a partition (role PO, CO or CU) or a keyring (role KRSO or KRCO)."""
        from hsmnode.client._sessions import PartitionSession

        r = self.call(
            ntls_pb2_grpc.NtlsStub,
            "OpenSession",
            ntls_pb2.OpenSessionRequest(
                request_id=request_id or new_request_id(), partition=partition, role=role, password=password
            ),
            write=True,
        )
        return PartitionSession(self, r.token, r.partition, r.role, r.expires_ms)

    def resume_partition(self, token: str, partition: str = "", role: str = "") -> PartitionSession:
        from hsmnode.client._sessions import PartitionSession

        return PartitionSession(self, token, partition, role, 0)

    def change_partition_password(
        self,
        partition: str,
        role: str,
        old_password: str,
        new_password: str,
        *,
        request_id: str | None = None,
    ) -> None:
        self.call(
            ntls_pb2_grpc.NtlsStub,
            "ChangePassword",
            ntls_pb2.PartitionPasswordRequest(
                request_id=request_id or new_request_id(),
                partition=partition,
                role=role,
                old_password=old_password,
                new_password=new_password,
            ),
            write=True,
        )

    def init_partition(
        self,
        partition: str,
        *,
        label: str,
        cloning_domain: str,
        po_password: str,
        request_id: str | None = None,
    ) -> None:
        self.call(
            ntls_pb2_grpc.NtlsStub,
            "InitPartition",
            ntls_pb2.InitPartitionRequest(
                request_id=request_id or new_request_id(),
                partition=partition,
                label=label,
                cloning_domain=cloning_domain,
                po_password=po_password,
            ),
            write=True,
        )

    def activate_partition(
        self, partition: str, co_password: str, *, active: bool = True, request_id: str | None = None
    ) -> None:
        self.call(
            ntls_pb2_grpc.NtlsStub,
            "Activate",
            ntls_pb2.ActivateRequest(
                request_id=request_id or new_request_id(),
                partition=partition,
                co_password=co_password,
                active=active,
            ),
            write=True,
        )

    # --- fault injection (members with [debug] fault_injection = true) ------

    def debug_fail_apply(self, reason: str, *, request_id: str | None = None) -> None:
        request = debug_pb2.FailApplyRequest(request_id=request_id or new_request_id(), reason=reason)
        self.call(debug_pb2_grpc.DebugStub, "FailApply", request, write=True)

    # --- transport --------------------------------------------------------

    def _channel(self, endpoint: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = grpc.secure_channel(endpoint, self._creds, options=_CHANNEL_OPTIONS)
                if self._interceptors:
                    channel = grpc.intercept_channel(channel, *self._interceptors)
                self._channels[endpoint] = channel
            return channel

    def _learn_members(self) -> None:
        """Add every member the cluster reports (e.g. after a join) to the endpoints (best effort)."""
        self._discover = False
        try:
            status = self.call(cluster_pb2_grpc.ClusterStub, "Status", cluster_pb2.ClusterStatusRequest())
        except HsmError:
            return
        known = list(self.endpoints)
        for member in status.members:
            if member.address and member.address not in known:
                known.append(member.address)
        self.endpoints = tuple(known)

    def healthy_endpoints(self) -> list[str]:
        now = time.monotonic()
        return [e for e in self.endpoints if self._down_until.get(e, 0.0) <= now]

    def _order(self, balance: bool) -> list[int]:
        """Members to try: round robin over healthy ones when balancing, else the last good one first;
        members that failed recently go last (they are probed again after `probe_interval`)."""
        n = len(self.endpoints)
        with self._lock:
            if balance:
                self._rotation = (self._rotation + 1) % n
                start = self._rotation
            else:
                start = self._preferred
        order = [(start + k) % n for k in range(n)]
        now = time.monotonic()
        healthy = [i for i in order if self._down_until.get(self.endpoints[i], 0.0) <= now]
        return healthy + [i for i in order if i not in healthy]

    def _mark(self, endpoint: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._down_until.pop(endpoint, None)
                self.answered[endpoint] = self.answered.get(endpoint, 0) + 1
            else:
                self._down_until[endpoint] = time.monotonic() + self.probe_interval

    def _note_index(self, metadata: Any) -> None:
        for key, value in metadata or ():
            if key == APPLIED_INDEX_KEY:
                try:
                    index = int(value)
                except ValueError:
                    continue
                with self._lock:
                    self._seen_index = max(self._seen_index, index)

    def call(
        self,
        stub_cls: Any,
        method: str,
        request: Any,
        *,
        write: bool = False,
        token: str = "",
        balance: bool = False,
    ) -> Any:
        """One RPC with failover. `write` lets an unknown outcome be retried (same request_id);
        `balance` spreads the call round robin over healthy members (reads and crypto).

        A member that refuses this client's certificate at the TLS handshake is not
        retried; when every member refuses it, the call fails with Unauthenticated.
        """
        if self._discover:
            self._learn_members()
        deadline = time.monotonic() + self.timeout
        last: grpc.RpcError | None = None
        refused: set[str] = set()
        n = len(self.endpoints)
        for round_no in range(6):
            for index in self._order(balance and round_no == 0):
                endpoint = self.endpoints[index]
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if endpoint in refused:
                    continue
                rpc = getattr(stub_cls(self._channel(endpoint)), method)
                metadata = [(MIN_INDEX_KEY, str(self._seen_index))]
                if token:
                    metadata.append((SESSION_KEY, token))
                try:
                    response, call = rpc.with_call(
                        request, timeout=min(left, max(1.0, self.timeout / 2)), metadata=metadata
                    )
                except grpc.RpcError as exc:
                    self._note_index(exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None)
                    code = exc.code()
                    socket_closed = code is grpc.StatusCode.UNAVAILABLE and "Socket closed" in (
                        exc.details() or ""
                    )
                    if socket_closed and self._refused(endpoint):
                        refused.add(endpoint)
                        if len(refused) == n:
                            raise self._refusal() from None
                        continue
                    if code in _FAILOVER_CODES or (write and code == grpc.StatusCode.ABORTED):
                        last = exc
                        self._mark(endpoint, False)
                        continue
                    raise error_from_rpc(exc) from None
                self._note_index(call.trailing_metadata())
                self._mark(endpoint, True)
                self._preferred = index
                return response
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.05 * (2**round_no), max(0.0, deadline - time.monotonic())))
        if refused and last is None:
            raise self._refusal()
        if last is not None:
            err = error_from_rpc(last)
            raise Unavailable(
                f"no member answered {method} ({', '.join(self.endpoints)}); last error: {err}"
            ) from None
        raise Unavailable(f"no member answered {method} within {self.timeout}s ({', '.join(self.endpoints)})")

    def call_stream(
        self, stub_cls: Any, method: str, request: Any, *, token: str = "", timeout: float | None = None
    ) -> Iterator[Any]:
        """A server-streaming call. The first member that starts answering serves the whole stream:
        before its first message the call fails over as `call` does (UNAVAILABLE, a deadline, ABORTED;
        the request carries its request_id), after it a broken stream raises."""
        last: grpc.RpcError | None = None
        for index in self._order(False):
            endpoint = self.endpoints[index]
            metadata = [(MIN_INDEX_KEY, str(self._seen_index))] + ([(SESSION_KEY, token)] if token else [])
            responses = getattr(stub_cls(self._channel(endpoint)), method)(
                request, timeout=timeout or self.timeout, metadata=metadata
            )
            try:
                first = next(responses)
            except StopIteration:
                return
            except grpc.RpcError as exc:
                if exc.code() in _FAILOVER_CODES or exc.code() == grpc.StatusCode.ABORTED:
                    last = exc
                    self._mark(endpoint, False)
                    continue
                raise error_from_rpc(exc) from None
            self._mark(endpoint, True)
            self._preferred = index
            yield first
            try:
                yield from responses
            except grpc.RpcError as exc:
                raise error_from_rpc(exc) from None
            self._note_index(responses.trailing_metadata())
            return
        detail = f"; last error: {error_from_rpc(last)}" if last is not None else ""
        raise Unavailable(f"no member answered {method} ({', '.join(self.endpoints)}){detail}")

    def _refused(self, endpoint: str) -> bool:
        return certificate_refused(endpoint, self.tls.ca_pem, self.tls.cert_pem, self.tls.key_pem)

    def _refusal(self) -> Unauthenticated:
        return Unauthenticated(
            f"the cluster refused this client certificate (sha256 fingerprint {self.fingerprint}): "
            "is it registered (hsmnode client register)?"
        )
