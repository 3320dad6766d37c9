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
        self.members = [MemberAddress(cfg.node_id, cfg.grpc_advertise, cfg.raft_address)] + [
            MemberAddress(p.id, p.grpc, p.raft) for p in cfg.peers
        ]
        self._by_raft = {m.raft: m for m in self.members}

    def member_id_for_raft(self, raft_address: str | None) -> str:
        if raft_address is None:
            return ""
        member = self._by_raft.get(raft_address)
        return member.id if member else raft_address

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
