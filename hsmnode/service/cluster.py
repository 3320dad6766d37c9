"""Cluster use cases: this member's status, the member directory, cluster bootstrap, fault injection."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hsmnode import crypto
from hsmnode.domain.appliance import DEFAULT_ACCOUNTS
from hsmnode.domain.commands import DebugFail, InitCluster
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.replication import ReplicationError
from hsmnode.service.context import Caller, NodeContext

log = logging.getLogger(__name__)

DEFAULT_PASSWORD = "PASSWORD"


@dataclass(frozen=True)
class MemberAddress:
    id: str
    grpc: str
    raft: str


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


class ClusterService:
    def __init__(self, ctx: NodeContext, smk_check: str = "") -> None:
        self._ctx = ctx
        self._smk_check = smk_check
        cfg = ctx.config
        self._configured = [MemberAddress(cfg.node_id, cfg.grpc_advertise, cfg.raft_address)] + [
            MemberAddress(p.id, p.grpc, p.raft) for p in cfg.peers
        ]

    @property
    def ctx(self) -> NodeContext:
        return self._ctx

    @property
    def members(self) -> list[MemberAddress]:
        """The replicated member directory (the node's config until the cluster is bootstrapped)."""
        directory = self._ctx.read(lambda s: dict(s.members))
        if not directory:
            return list(self._configured)
        return [
            MemberAddress(mid, grpc_address, raft) for mid, (raft, grpc_address) in sorted(directory.items())
        ]

    def member_id_for_raft(self, raft_address: str | None) -> str:
        if raft_address is None:
            return ""
        for member in self.members:
            if member.raft == raft_address:
                return member.id
        return raft_address

    def node_status(self) -> NodeStatus:
        raft = self._ctx.replicator.status()
        digest, replicated_id = self._ctx.replicator.read(lambda s: (s.digest(), s.cluster_id or ""))
        cfg = self._ctx.config
        return NodeStatus(
            id=cfg.node_id,
            cluster_id=cfg.cluster_id,
            address=cfg.grpc_advertise,
            raft_address=cfg.raft_address,
            role=raft.role,
            term=raft.term,
            leader=self.member_id_for_raft(raft.leader_address),
            commit_index=raft.commit_index,
            applied_index=raft.applied_index,
            state_digest=digest,
            has_quorum=raft.has_quorum,
            ready=raft.ready,
            replicated_cluster_id=replicated_id,
        )

    def bootstrap_if_leader(self) -> None:
        """The leader binds a fresh replicated state to the configured cluster id (once)."""
        if self._ctx.replicator.status().role != "leader":
            return
        if self._ctx.replicator.read(lambda s: s.cluster_id) is not None:
            return
        cmd = InitCluster(
            actor=f"node:{self._ctx.node_id}",
            request_id=f"bootstrap-{self._ctx.config.cluster_id}",
            timestamp=self._ctx.clock_ms(),
            cluster_id=self._ctx.config.cluster_id,
            # the Luna factory default: every default account starts with PASSWORD, changed at first login
            default_password_hashes=tuple(crypto.hash_password(DEFAULT_PASSWORD) for _ in DEFAULT_ACCOUNTS),
            smk_check=self._smk_check,
            members=tuple(f"{m.id}|{m.raft}|{m.grpc}" for m in self._configured),
        )
        try:
            self._ctx.propose(cmd, timeout=2.0)
            log.info("bootstrapped replicated state for cluster %s", self._ctx.config.cluster_id)
        except (ReplicationError, DomainError) as exc:
            log.warning("cluster bootstrap did not complete yet: %s", exc)

    def fail_apply(self, caller: Caller, request_id: str, reason: str, timeout: float | None) -> None:
        if not self._ctx.config.fault_injection:
            raise DomainError(
                ErrorCode.PERMISSION_DENIED,
                "fault injection is disabled on this member (set [debug] fault_injection = true in its config)",
            )
        self._ctx.submit(DebugFail, caller.cert_actor, request_id, timeout, reason=reason)


def add_member(
    ctx: NodeContext,
    caller_actor: str,
    member_id: str,
    raft: str,
    grpc_address: str,
    request_id: str,
    timeout: float | None,
) -> None:
    """Record the member in the directory (authorized in apply), then add it to Raft; undo the record
    if Raft refuses."""
    from hsmnode.domain.commands import MemberAdd, MemberRemove

    ctx.submit(
        MemberAdd, caller_actor, request_id, timeout, member_id=member_id, raft=raft, grpc=grpc_address
    )
    try:
        ctx.replicator.change_membership(True, raft, timeout=min(timeout or 5.0, 5.0))
    except ReplicationError:
        ctx.submit(MemberRemove, caller_actor, f"{request_id}/undo", timeout, member_id=member_id)
        raise


def remove_member(
    ctx: NodeContext, caller_actor: str, member_id: str, request_id: str, timeout: float | None
) -> None:
    """Take the member out of Raft (moving leadership away first if it leads), then out of the directory."""
    from hsmnode.domain.access import authorize
    from hsmnode.domain.commands import MemberRemove

    now = ctx.clock_ms()
    members = ctx.read(lambda s: (authorize(s, caller_actor, "cluster.member", now), dict(s.members))[1])
    if member_id not in members:
        raise DomainError(ErrorCode.NOT_FOUND, f"no member '{member_id}'")
    if len(members) == 1:
        raise DomainError(ErrorCode.FAILED_PRECONDITION, "the last member of a cluster cannot be removed")
    raft = members[member_id][0]
    if raft == ctx.replicator.self_address:
        # a member cannot see its own removal commit (the leader stops talking to it), so the
        # removal must come through another member; a leader hands leadership over first
        if ctx.replicator.status().role == "leader":
            ctx.replicator.transfer_leadership(timeout=3.0)
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"member '{member_id}' cannot remove itself: send its removal to another member "
            "(it is no longer the leader)",
        )
    if ctx.replicator.status().leader_address == raft:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"member '{member_id}' is the leader: send its removal to it first (it hands leadership over), "
            "then to another member",
        )
    ctx.replicator.change_membership(False, raft, timeout=min(timeout or 5.0, 5.0))
    ctx.submit(MemberRemove, caller_actor, request_id, timeout, member_id=member_id)
