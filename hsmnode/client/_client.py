"""HsmClient: typed calls to an hsmnode cluster with failover between members."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from hsmnode.client._errors import Unavailable, error_from_rpc
from hsmnode.client._profile import Tls, load_profile
from hsmnode.pb import audit_pb2, audit_pb2_grpc, cluster_pb2, cluster_pb2_grpc, debug_pb2, debug_pb2_grpc

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


@dataclass(frozen=True)
class MemberStatus:
    id: str
    address: str
    role: str
    applied_index: int
    raft_address: str
    state_digest: str


@dataclass(frozen=True)
class ClusterStatus:
    cluster_id: str
    leader: str
    term: int
    members: tuple[MemberStatus, ...]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of `hsmnode cluster status --json`."""
        return {
            "cluster_id": self.cluster_id,
            "leader": self.leader,
            "term": self.term,
            "members": [
                {"id": m.id, "address": m.address, "role": m.role, "applied_index": m.applied_index}
                for m in self.members
            ],
        }


@dataclass(frozen=True)
class NodeStatus:
    id: str
    cluster_id: str
    address: str
    raft_address: str
    role: str
    term: int
    leader: str
    commit_index: int
    applied_index: int
    state_digest: str
    has_quorum: bool
    ready: bool
    replicated_cluster_id: str


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    timestamp_ms: int
    actor: str
    request_id: str
    command: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    length: int
    head_hash: str
    problem: str


def new_request_id() -> str:
    return uuid.uuid4().hex


class HsmClient:
    """A client of every member in `endpoints`.

    A call goes to the member that last answered; on UNAVAILABLE or a deadline it
    goes to the next one. A write whose outcome is unknown (ABORTED) is retried
    with the same request_id, so the cluster applies it at most once. Every call
    sends the highest applied index this client has seen, so a member that is
    behind never answers with older state than the client already observed.
    """

    def __init__(self, endpoints: Sequence[str], tls: Tls, *, timeout: float = 5.0) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self._creds = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._preferred = 0
        self._seen_index = 0

    @classmethod
    def from_profile(cls, path: str | Path, *, timeout: float = 5.0) -> HsmClient:
        profile = load_profile(path)
        return cls(profile.endpoints, profile.tls, timeout=timeout)

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

    # --- cluster ----------------------------------------------------------

    def cluster_status(self) -> ClusterStatus:
        r = self._call(cluster_pb2_grpc.ClusterStub, "Status", cluster_pb2.ClusterStatusRequest())
        return ClusterStatus(
            cluster_id=r.cluster_id,
            leader=r.leader,
            term=r.term,
            members=tuple(
                MemberStatus(m.id, m.address, m.role, m.applied_index, m.raft_address, m.state_digest)
                for m in r.members
            ),
        )

    def node_status(self) -> NodeStatus:
        """The status of whichever member answers (use a one-endpoint client to pick the member)."""
        r = self._call(cluster_pb2_grpc.ClusterStub, "NodeStatus", cluster_pb2.NodeStatusRequest())
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
        )

    # --- audit ------------------------------------------------------------

    def audit_note(self, text: str, *, request_id: str | None = None) -> tuple[int, str]:
        request = audit_pb2.AuditNoteRequest(request_id=request_id or new_request_id(), text=text)
        r = self._call(audit_pb2_grpc.AuditStub, "Note", request, write=True)
        return r.seq, r.hash

    def audit_list(self, *, after_seq: int = 0, limit: int = 0) -> tuple[list[AuditRecord], int]:
        r = self._call(
            audit_pb2_grpc.AuditStub, "List", audit_pb2.AuditListRequest(after_seq=after_seq, limit=limit)
        )
        records = [
            AuditRecord(
                x.seq,
                x.timestamp_ms,
                x.actor,
                x.request_id,
                x.command,
                x.outcome,
                x.detail,
                x.prev_hash,
                x.hash,
            )
            for x in r.records
        ]
        return records, r.total

    def audit_verify(self) -> ChainCheck:
        r = self._call(audit_pb2_grpc.AuditStub, "Verify", audit_pb2.AuditVerifyRequest())
        return ChainCheck(r.ok, r.length, r.head_hash, r.problem)

    # --- fault injection (members with [debug] fault_injection = true) ------

    def debug_fail_apply(self, reason: str, *, request_id: str | None = None) -> None:
        request = debug_pb2.FailApplyRequest(request_id=request_id or new_request_id(), reason=reason)
        self._call(debug_pb2_grpc.DebugStub, "FailApply", request, write=True)

    # --- transport --------------------------------------------------------

    def _channel(self, endpoint: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = grpc.secure_channel(endpoint, self._creds, options=_CHANNEL_OPTIONS)
                self._channels[endpoint] = channel
            return channel

    def _note_index(self, metadata: Any) -> None:
        for key, value in metadata or ():
            if key == APPLIED_INDEX_KEY:
                try:
                    index = int(value)
                except ValueError:
                    continue
                with self._lock:
                    self._seen_index = max(self._seen_index, index)

    def _call(self, stub_cls: Any, method: str, request: Any, *, write: bool = False) -> Any:
        deadline = time.monotonic() + self.timeout
        last: grpc.RpcError | None = None
        n = len(self.endpoints)
        for round_no in range(4):
            start = self._preferred
            for offset in range(n):
                index = (start + offset) % n
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                endpoint = self.endpoints[index]
                rpc = getattr(stub_cls(self._channel(endpoint)), method)
                try:
                    response, call = rpc.with_call(
                        request,
                        timeout=min(left, max(1.0, self.timeout / 2)),
                        metadata=((MIN_INDEX_KEY, str(self._seen_index)),),
                    )
                except grpc.RpcError as exc:
                    self._note_index(exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None)
                    code = exc.code()
                    if code in _FAILOVER_CODES or (write and code == grpc.StatusCode.ABORTED):
                        last = exc
                        continue
                    raise error_from_rpc(exc) from None
                self._note_index(call.trailing_metadata())
                self._preferred = index
                return response
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.05 * (2**round_no), max(0.0, deadline - time.monotonic())))
        if last is not None:
            err = error_from_rpc(last)
            raise Unavailable(
                f"no member answered {method} ({', '.join(self.endpoints)}); last error: {err}"
            ) from None
        raise Unavailable(f"no member answered {method} within {self.timeout}s ({', '.join(self.endpoints)})")
