"""HsmClient: typed calls to an hsmnode cluster with failover between members."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from hsmnode.client._errors import HsmError, Unauthenticated, Unavailable, error_from_rpc
from hsmnode.client._outcome import (
    APPLIED_INDEX_KEY,
    MEMBER_REFUSALS,
    Attempts,
    provably_not_applied,
    refusal_of,
)
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
CLUSTER_ID_KEY = "x-hsm-cluster-id"
_MAX_BACKOFF = 0.5
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def new_request_id() -> str:
    return uuid.uuid4().hex


class IndexTracker:
    """The highest applied Raft index seen: what read-your-writes asks members to have applied.

    One client keeps its own; clients that must see each other's writes share one:

        admin = HsmClient(endpoints, admin_tls)
        app = HsmClient(endpoints, app_tls, index_from=admin)   # reads what admin wrote
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index = 0

    @property
    def index(self) -> int:
        return self._index

    def note(self, index: int) -> None:
        with self._lock:
            if index > self._index:
                self._index = index


class HsmClient:
    """A client of every member in `endpoints`, presenting one TLS client certificate.

    Failover: a call goes to the member that last answered (crypto round robin over
    healthy members); on UNAVAILABLE, a deadline, or a member's refusal as removed or
    of another cluster it goes to the next member, and it keeps trying with backoff
    (50 ms doubling to 500 ms) until the call's own deadline (`timeout`), so a call
    outlives an election while a majority of members may still elect a leader.

    Outcome contract of a write (a request with a request_id):
    - it returns the result of exactly one execution: a retry after a lost answer or a
      leader change carries the same request_id, and the cluster answers a repeated
      request_id with its first result;
    - `OutcomeUnknown` (its `request_id` attribute says which) when an attempt may have
      been applied and no member answered before the deadline: call again with that
      request_id to learn the outcome; never retry it with a new one (that could apply
      it twice);
    - `Unavailable` only when no attempt can have been applied (every member refused
      it unsent, or answered that it did not apply it).
    A read fails with `Unavailable` after its deadline.

    Membership: with `discover`, the client learns the members from cluster status after
    its first call and again every `refresh_interval` seconds, adding new members and
    dropping those the cluster stopped listing; an answer from a removed member is never
    trusted. Every call sends the highest applied index seen (`index_from` shares it with
    other clients), so no member answers with older state than this client observed.

    With an admin certificate (from the cluster CA) use `login()`; with a registered
    client certificate use the NTLS handshake: `list_slots()`, `open_session()`.
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
        index_from: HsmClient | IndexTracker | None = None,
        cluster_id: str = "",
        refresh_interval: float = 10.0,
    ) -> None:
        """`timeout`: each call's deadline in seconds, retries included. `discover`: learn the
        members from cluster status (and follow membership changes). `interceptors`: e.g. a
        FaultInjector. `probe_interval`: seconds a member that failed stays out of the rotation.
        `index_from`: share read-your-writes with another client (or an IndexTracker).
        `cluster_id`: the cluster meant; a member of another one refuses and is dropped.
        Raises ValueError for malformed endpoints or TLS material."""
        if not endpoints or not all(isinstance(e, str) and e.rpartition(":")[2].isdigit() for e in endpoints):
            raise ValueError(f"endpoints must be a non-empty list of host:port, got {list(endpoints)!r}")
        tls.check()
        self.endpoints = tuple(dict.fromkeys(endpoints))
        self._discover = discover and len(self.endpoints) > 1
        self._interceptors = tuple(interceptors)
        self.probe_interval = probe_interval
        self.refresh_interval = refresh_interval
        self._down_until: dict[str, float] = {}
        self._rotation = 0
        self.answered: dict[str, int] = {}  # successful answers per member: who served this client
        self.dropped: set[str] = set()  # endpoints dropped as removed, foreign or no longer listed
        self.timeout = timeout
        self.tls = tls
        self.cluster_id = cluster_id
        self._creds = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._preferred = ""
        self._next_refresh = 0.0
        self._refreshing = False
        self._listed_once: set[str] = set()  # addresses some cluster status listed as members
        if isinstance(index_from, HsmClient):
            self.index_tracker = index_from.index_tracker
        else:
            self.index_tracker = index_from or IndexTracker()

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
        return cls(profile.endpoints, tls, timeout=timeout, cluster_id=profile.cluster_id)

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
        return self.index_tracker.index

    @property
    def fingerprint(self) -> str:
        from hsmnode.client._profile import certificate_der

        return hashlib.sha256(certificate_der(self.tls.cert_pem)).hexdigest()

    # --- cluster ----------------------------------------------------------

    def cluster_status(self) -> ClusterStatus:
        """The cluster as a member with a leader sees it (a removed member's answer is never taken;
        one without a leader only when no member has one)."""
        r = self.call(
            cluster_pb2_grpc.ClusterStub,
            "Status",
            cluster_pb2.ClusterStatusRequest(),
            accept=lambda answer: bool(answer.leader),
        )
        return ClusterStatus(
            cluster_id=r.cluster_id,
            leader=r.leader,
            term=r.term,
            members=tuple(
                MemberStatus(
                    m.id,
                    m.address,
                    m.role,
                    m.applied_index,
                    m.raft_address,
                    m.state_digest,
                    m.lag,
                    m.voter,
                    m.listed,
                )
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
            removed_from=r.removed_from,
            raft_configuration=tuple(r.raft_configuration),
            directory=tuple(r.directory),
            incarnation=r.incarnation,
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

    def _maybe_refresh(self) -> None:
        """Follow membership: learn the members from cluster status when a refresh is due."""
        if not self._discover:
            return
        with self._lock:
            if self._refreshing or time.monotonic() < self._next_refresh:
                return
            self._refreshing = True
            self._next_refresh = time.monotonic() + self.refresh_interval
        try:
            self.refresh_members()
        finally:
            self._refreshing = False

    def refresh_members(self) -> None:
        """Take the members a member with a leader lists: add new ones, drop those it listed before
        and no longer lists (an endpoint never listed, e.g. another name of a member, stays).
        Best effort: without such an answer the endpoints stay as they are."""
        try:
            status = self.cluster_status()
        except HsmError:
            return
        listed = [m.address for m in status.members if m.address and m.listed]
        if not status.leader or not listed:
            return
        if not self.cluster_id:
            self.cluster_id = status.cluster_id
        with self._lock:
            self._listed_once.update(listed)
            gone = [e for e in self.endpoints if e in self._listed_once and e not in listed]
            kept = [e for e in self.endpoints if e not in gone]
            self.dropped.update(gone)
            self.dropped.difference_update(listed)
            self.endpoints = tuple(kept + [e for e in listed if e not in kept])

    def _drop(self, endpoint: str) -> bool:
        """A member refused as removed or of another cluster: out of the endpoints. False for the last
        endpoint, which stays (its refusal is then the answer)."""
        with self._lock:
            if endpoint not in self.endpoints:
                return True
            if len(self.endpoints) == 1:
                return False
            self.endpoints = tuple(e for e in self.endpoints if e != endpoint)
            self.dropped.add(endpoint)
            self._next_refresh = 0.0  # learn who replaces it
            return True

    def healthy_endpoints(self) -> list[str]:
        now = time.monotonic()
        return [e for e in self.endpoints if self._down_until.get(e, 0.0) <= now]

    def _order(self, balance: bool) -> list[str]:
        """Members to try: round robin over healthy ones when balancing, else the last good one first;
        members that failed recently go last (they are probed again after `probe_interval`)."""
        endpoints = self.endpoints
        n = len(endpoints)
        with self._lock:
            if balance:
                self._rotation = (self._rotation + 1) % n
                start = self._rotation
            else:
                start = endpoints.index(self._preferred) if self._preferred in endpoints else 0
        order = [endpoints[(start + k) % n] for k in range(n)]
        now = time.monotonic()
        healthy = [e for e in order if self._down_until.get(e, 0.0) <= now]
        return healthy + [e for e in order if e not in healthy]

    def _mark(self, endpoint: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._down_until.pop(endpoint, None)
                self.answered[endpoint] = self.answered.get(endpoint, 0) + 1
                self._preferred = endpoint
            else:
                self._down_until[endpoint] = time.monotonic() + self.probe_interval

    def _note_index(self, metadata: Any) -> None:
        for key, value in metadata or ():
            if key == APPLIED_INDEX_KEY:
                try:
                    self.index_tracker.note(int(value))
                except ValueError:
                    continue

    def call(
        self,
        stub_cls: Any,
        method: str,
        request: Any,
        *,
        write: bool = False,
        token: str = "",
        balance: bool = False,
        accept: Callable[[Any], bool] | None = None,
    ) -> Any:
        """One RPC with failover until the client's deadline (see the class docstring for the outcome
        contract). `write`: the request carries a request_id, so an attempt whose outcome is unknown
        is retried with it; `balance`: spread the call round robin over healthy members (reads and
        crypto); `accept`: a preferred answer (others are kept as a fallback while members are tried).

        A member that refuses this client's certificate at the TLS handshake is not retried; when
        every member refuses it, the call fails with Unauthenticated.
        Raises OutcomeUnknown, Unavailable, Unauthenticated or the HsmError of the member's answer.
        """
        self._maybe_refresh()
        deadline = time.monotonic() + self.timeout
        attempts = Attempts(method, write, getattr(request, "request_id", ""))
        fallback: Any = None
        round_no = 0
        while True:
            for endpoint in self._order(balance and round_no == 0):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if endpoint in attempts.refused or endpoint not in self.endpoints:
                    continue
                try:
                    response, rpc_call = self._send(endpoint, stub_cls, method, request, token, left)
                except grpc.RpcError as exc:
                    self._judge(endpoint, exc, attempts)
                    continue
                trailing = rpc_call.trailing_metadata()
                self._note_index(trailing)
                if (
                    refusal_of(trailing) in MEMBER_REFUSALS
                    and method != "NodeStatus"
                    and self._drop(endpoint)
                ):
                    continue  # a removed member's status answer: its view is stale
                self._mark(endpoint, True)
                if accept is None or accept(response):
                    return response
                fallback = response
            if fallback is not None:
                return fallback
            if attempts.refused and len(attempts.refused) >= len(self.endpoints):
                raise self._refusal()
            round_no += 1
            now = time.monotonic()
            if now >= deadline:
                break
            time.sleep(min(0.05 * 2 ** min(round_no - 1, 4), _MAX_BACKOFF, deadline - now))
        if attempts.refused and attempts.last is None:
            raise self._refusal()
        raise attempts.failure(self.endpoints, self.timeout)

    def _send(
        self, endpoint: str, stub_cls: Any, method: str, request: Any, token: str, left: float
    ) -> tuple[Any, Any]:
        rpc = getattr(stub_cls(self._channel(endpoint)), method)
        metadata = [(MIN_INDEX_KEY, str(self.index_tracker.index))]
        if token:
            metadata.append((SESSION_KEY, token))
        if self.cluster_id:
            metadata.append((CLUSTER_ID_KEY, self.cluster_id))
        return rpc.with_call(request, timeout=min(left, max(1.0, self.timeout / 2)), metadata=metadata)  # type: ignore[no-any-return]

    def _judge(self, endpoint: str, exc: grpc.RpcError, attempts: Attempts) -> None:
        """Sort a failed attempt: fail over (noting whether it may have been applied), or raise."""
        trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
        self._note_index(trailing)
        code = exc.code()
        if code is grpc.StatusCode.FAILED_PRECONDITION and refusal_of(trailing) in MEMBER_REFUSALS:
            if not self._drop(endpoint):  # nothing ran there; the only member left says why
                raise error_from_rpc(exc) from None
            attempts.last = exc
            return
        socket_closed = code is grpc.StatusCode.UNAVAILABLE and "Socket closed" in (exc.details() or "")
        if socket_closed and self._refused(endpoint):
            attempts.refused.add(endpoint)
            return
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or (
            attempts.write and code is grpc.StatusCode.ABORTED
        ):
            attempts.last = exc
            if attempts.write and not provably_not_applied(exc, trailing):
                attempts.maybe_applied = True
            if code is not grpc.StatusCode.ABORTED:
                self._mark(endpoint, False)
            return
        raise error_from_rpc(exc) from None

    def call_stream(
        self, stub_cls: Any, method: str, request: Any, *, token: str = "", timeout: float | None = None
    ) -> Iterator[Any]:
        """A server-streaming call. The first member that starts answering serves the whole stream:
        before its first message the call fails over as `call` does (UNAVAILABLE, a deadline, ABORTED,
        a member refusing as removed or of another cluster; the request carries its request_id),
        after it a broken stream raises."""
        last: grpc.RpcError | None = None
        for endpoint in self._order(False):
            metadata = [(MIN_INDEX_KEY, str(self.index_tracker.index))] + (
                [(SESSION_KEY, token)] if token else []
            )
            if self.cluster_id:
                metadata.append((CLUSTER_ID_KEY, self.cluster_id))
            try:
                responses = getattr(stub_cls(self._channel(endpoint)), method)(
                    request, timeout=timeout or self.timeout, metadata=metadata
                )
                first = next(responses)
            except StopIteration:
                return
            except grpc.RpcError as exc:
                code = exc.code()
                trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
                if code is grpc.StatusCode.FAILED_PRECONDITION and refusal_of(trailing) in MEMBER_REFUSALS:
                    last = exc
                    self._drop(endpoint)
                    continue
                if code in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.ABORTED,
                ):
                    last = exc
                    self._mark(endpoint, False)
                    continue
                raise error_from_rpc(exc) from None
            self._mark(endpoint, True)
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
