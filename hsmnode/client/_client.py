"""HsmClient: the SDK's façade, typed calls to an hsmnode cluster.

It holds a `Transport` (`_transport.py`: channels, failover, membership, read-your-writes, the
outcome contract) and opens the sessions (`_appliance.py`, `_partition.py`), which hold the same
transport.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import grpc

from hsmnode.client import _convert as convert
from hsmnode.client._appliance import ApplianceSession
from hsmnode.client._hints import IndexTracker
from hsmnode.client._outcome import request_id_or_new
from hsmnode.client._partition import PartitionSession
from hsmnode.client._profile import Tls, load_profile
from hsmnode.client._transport import Stub, Transport
from hsmnode.client._types import ClusterStatus, NodeStatus, Slots
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
        coalesce: bool | None = None,
    ) -> None:
        """`timeout`: each call's deadline in seconds, retries included. `discover`: learn the
        members from cluster status (and follow membership changes). `interceptors`: e.g. a
        FaultInjector. `probe_interval`: seconds between the background health checks of a member
        that failed a call; it stays out of the rotation until one answers SERVING.
        `index_from`: share read-your-writes with another client (or an IndexTracker).
        `cluster_id`: the cluster meant; a member of another one refuses and is dropped.
        `coalesce`: gather concurrent sign/verify/encrypt/decrypt calls into batches on one stream
        per member, and concurrent generate_key calls into GenerateBatch calls to the leader
        (default: on, unless the environment sets HSMNODE_COALESCE=0).
        Raises ValueError for malformed endpoints or TLS material, or a timeout that is not a finite
        number of seconds above 0."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a finite number of seconds above 0, got {timeout!r}")
        self.transport = Transport(
            endpoints,
            tls,
            timeout=timeout,
            discover=discover,
            interceptors=interceptors,
            probe_interval=probe_interval,
            index_tracker=index_from.index_tracker if isinstance(index_from, HsmClient) else index_from,
            cluster_id=cluster_id,
            refresh_interval=refresh_interval,
            coalesce=coalesce,
        )

    @classmethod
    def from_profile(
        cls, path: str | Path, *, timeout: float = 5.0, identity: str = "admin", **options: Any
    ) -> HsmClient:
        """identity "admin" uses the profile's admin certificate; "client" its default NTLS client
        certificate; any other name one of the profile's named NTLS clients. `options`: the
        constructor's other keywords (coalesce, discover, interceptors, ...)."""
        profile = load_profile(path)
        tls = (
            profile.tls
            if identity == "admin"
            else profile.client_tls(None if identity == "client" else identity)
        )
        return cls(profile.endpoints, tls, timeout=timeout, cluster_id=profile.cluster_id, **options)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every channel (a later call opens them again)."""
        self.transport.close()

    # --- the transport's state, as the client has always shown it -------------------------

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The members this client calls now (learned members added, dropped ones gone)."""
        return self.transport.endpoints

    @property
    def dropped(self) -> set[str]:
        """Endpoints dropped as removed, of another cluster, or no longer listed."""
        return self.transport.dropped

    @property
    def answered(self) -> dict[str, int]:
        """Successful answers per member: who served this client."""
        return self.transport.answered

    @property
    def index_tracker(self) -> IndexTracker:
        return self.transport.index_tracker

    @property
    def seen_index(self) -> int:
        """The highest applied Raft index this client (or those sharing its tracker) has seen."""
        return self.transport.index_tracker.index

    @property
    def tls(self) -> Tls:
        return self.transport.tls

    @property
    def timeout(self) -> float:
        return self.transport.timeout

    @property
    def cluster_id(self) -> str:
        return self.transport.cluster_id

    @property
    def fingerprint(self) -> str:
        return self.transport.fingerprint

    def healthy_endpoints(self) -> list[str]:
        return self.transport.healthy_endpoints()

    def refresh_members(self) -> None:
        self.transport.refresh_members()

    def call(
        self,
        stub_cls: Stub,
        method: str,
        request: Any,
        *,
        write: bool = False,
        token: str = "",
        balance: bool = False,
        accept: Callable[[Any], bool] | None = None,
    ) -> Any:
        """One RPC by stub and method name, with failover: `Transport.call`."""
        return self.transport.call(
            stub_cls, method, request, write=write, token=token, balance=balance, accept=accept
        )

    def call_stream(
        self, stub_cls: Stub, method: str, request: Any, *, token: str = "", timeout: float | None = None
    ) -> Iterator[Any]:
        """A server-streaming RPC with failover before its first message: `Transport.call_stream`."""
        return self.transport.call_stream(stub_cls, method, request, token=token, timeout=timeout)

    def _channel(self, endpoint: str) -> grpc.Channel:
        return self.transport.channel(endpoint)

    # --- cluster ----------------------------------------------------------

    def cluster_status(self) -> ClusterStatus:
        """The cluster as a member with a leader sees it (a removed member's answer is never taken;
        one without a leader only when no member has one)."""
        return convert.cluster_status(self.transport.cluster_status())

    def node_status(self) -> NodeStatus:
        """The status of whichever member answers (use a one-endpoint client to pick the member)."""
        r = self.transport.call(cluster_pb2_grpc.ClusterStub, "NodeStatus", cluster_pb2.NodeStatusRequest())
        return convert.node_status(r)

    # --- appliance logins -------------------------------------------------------

    def login(
        self, user: str, password: str, *, new_password: str = "", request_id: str | None = None
    ) -> ApplianceSession:
        """Log in as an appliance user (send new_password when the current one has expired)."""
        r = self.transport.call(
            auth_pb2_grpc.AuthStub,
            "Login",
            auth_pb2.LoginRequest(
                request_id=request_id_or_new(request_id),
                user=user,
                password=password,
                new_password=new_password,
            ),
            write=True,
        )
        return ApplianceSession(self, r.token, r.subject, r.role, r.expires_ms)

    def resume(self, token: str) -> ApplianceSession:
        """An appliance session from a token obtained earlier (e.g. cached by the CLI)."""
        return ApplianceSession(self, token, "", "", 0)

    def change_password(
        self, user: str, old_password: str, new_password: str, *, request_id: str | None = None
    ) -> None:
        self.transport.call(
            auth_pb2_grpc.AuthStub,
            "ChangePassword",
            auth_pb2.ChangePasswordRequest(
                request_id=request_id_or_new(request_id),
                user=user,
                old_password=old_password,
                new_password=new_password,
            ),
            write=True,
        )

    # --- the NTLS handshake -------------------------------------------------------

    def list_slots(self) -> Slots:
        """This client's registered name (`client`) and the partitions and keyrings assigned to it
        (`slots`)."""
        r = self.transport.call(ntls_pb2_grpc.NtlsStub, "ListSlots", ntls_pb2.ListSlotsRequest())
        return Slots(r.client, [convert.slot(s) for s in r.slots])

    def open_session(
        self, partition: str, password: str, *, role: str = "CO", request_id: str | None = None
    ) -> PartitionSession:
        """Open a session on a partition (role PO, CO or CU) or a keyring (role KRSO or KRCO); the
        role's case does not matter."""
        r = self.transport.call(
            ntls_pb2_grpc.NtlsStub,
            "OpenSession",
            ntls_pb2.OpenSessionRequest(
                request_id=request_id_or_new(request_id),
                partition=partition,
                role=role.upper(),
                password=password,
            ),
            write=True,
        )
        return PartitionSession(self, r.token, r.partition, r.role, r.expires_ms)

    def resume_partition(self, token: str, partition: str = "", role: str = "") -> PartitionSession:
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
        self.transport.call(
            ntls_pb2_grpc.NtlsStub,
            "ChangePassword",
            ntls_pb2.PartitionPasswordRequest(
                request_id=request_id_or_new(request_id),
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
        self.transport.call(
            ntls_pb2_grpc.NtlsStub,
            "InitPartition",
            ntls_pb2.InitPartitionRequest(
                request_id=request_id_or_new(request_id),
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
        self.transport.call(
            ntls_pb2_grpc.NtlsStub,
            "Activate",
            ntls_pb2.ActivateRequest(
                request_id=request_id_or_new(request_id),
                partition=partition,
                co_password=co_password,
                active=active,
            ),
            write=True,
        )

    # --- fault injection (members with [debug] fault_injection = true) ------

    def debug_fail_apply(self, reason: str, *, request_id: str | None = None) -> None:
        request = debug_pb2.FailApplyRequest(request_id=request_id_or_new(request_id), reason=reason)
        self.transport.call(debug_pb2_grpc.DebugStub, "FailApply", request, write=True)
