"""Cluster use cases: this member's status, the member directory, cluster bootstrap, fault injection."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from hsmnode import crypto
from hsmnode.domain.commands import DebugFail, InitCluster
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.permissions import DEFAULT_ACCOUNTS
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
    node_certificate: str = ""
    members: int = 0
    removed_from: str = ""
    raft_configuration: tuple[str, ...] = ()
    directory: tuple[str, ...] = ()
    incarnation: str = ""


class ClusterService:
    def __init__(self, ctx: NodeContext, smk_check: str = "") -> None:
        self._ctx = ctx
        self._smk_check = smk_check
        self._incarnation = uuid.uuid4().hex[:16]  # this process's: a restart changes it
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
        digest, replicated_id, directory = self._ctx.replicator.read(
            lambda s: (s.digest(), s.cluster_id or "", sorted(raft for raft, _ in s.members.values()))
        )
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
            node_certificate=self._ctx.node_cert_pem.decode(),
            members=len(self.members),
            removed_from=self._ctx.replicator.removed_from,
            raft_configuration=tuple(sorted(self._ctx.replicator.raft_configuration())),
            directory=tuple(directory),
            incarnation=self._incarnation,
        )

    def departed(self) -> dict[str, tuple[str, str, int]]:
        """Members removed from the directory: id -> (Raft address, gRPC address, removed at ms)."""
        return self._ctx.read(lambda s: dict(s.departed))

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


def join_bundle(
    ctx: NodeContext, caller_actor: str, node_certificate: str
) -> tuple[str, list[MemberAddress], bytes]:
    """The cluster's id, members and (sealed to the joiner's node certificate) Raft secret and SMK."""
    import json

    from hsmnode.crypto.sealing import issued_by, seal
    from hsmnode.domain.access import authorize

    now = ctx.clock_ms()
    ctx.read(lambda s: authorize(s, caller_actor, "cluster.member", now))
    cert = node_certificate.encode()
    if not issued_by(cert, ctx.ca_pem):
        raise DomainError(
            ErrorCode.PERMISSION_DENIED,
            "the joining node's certificate was not issued by this cluster's CA: issue it a node certificate first",
        )
    smk_path = ctx.config.smk_file
    assert smk_path is not None
    secrets_json = json.dumps(
        {"raft_password": ctx.config.raft_password(), "smk": smk_path.read_text().strip()}
    )
    service = ClusterService(ctx)
    return ctx.config.cluster_id, service.members, seal(cert, secrets_json.encode())


def adopt_cluster(
    ctx: NodeContext, caller_actor: str, cluster_id: str, members: list[MemberAddress], sealed: bytes
) -> str:
    """On the joining node: archive, adopt the cluster's identity, and restart as its member."""
    from hsmnode.domain.access import authorize

    now = ctx.clock_ms()
    own_members = ctx.read(lambda s: (authorize(s, caller_actor, "cluster.member", now), len(s.members))[1])
    if ctx.config.peers or own_members > 1:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"this node is a member of cluster {ctx.config.cluster_id} with {max(own_members, len(ctx.config.peers) + 1)} "
            "members: remove it there (hsmnode cluster remove-member) before it joins another",
        )
    return _adopt(ctx, cluster_id, members, sealed)


def rejoin_cluster(ctx: NodeContext, cluster_id: str, members: list[MemberAddress], sealed: bytes) -> str:
    """A member removed from its cluster joins it again: archive, drop its Raft state, restart fresh.

    A removed member serves no client, so no session authorizes this: the bundle does. Only a
    cluster admin gets one (JoinBundle), sealed to this node's certificate, and it must carry
    this cluster's Raft secret. (By the time the bundle arrives the cluster has added the
    member back, so it may no longer see itself as removed.)"""
    import json

    from hsmnode.crypto.sealing import SealError, open_sealed

    try:
        secrets = json.loads(open_sealed(ctx.node_key_pem, sealed))
    except (SealError, ValueError) as exc:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
    if secrets.get("raft_password") != ctx.config.raft_password():
        raise DomainError(
            ErrorCode.PERMISSION_DENIED, f"the join bundle does not carry cluster {cluster_id}'s Raft secret"
        )
    return _adopt(ctx, cluster_id, members, sealed)


def _adopt(ctx: NodeContext, cluster_id: str, members: list[MemberAddress], sealed: bytes) -> str:
    import json

    from hsmnode import membership
    from hsmnode.crypto.sealing import SealError, open_sealed

    if not any(m.raft == ctx.config.raft_address for m in members):
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, "the cluster has not added this node as a member yet"
        )
    try:
        secrets = json.loads(open_sealed(ctx.node_key_pem, sealed))
    except (SealError, ValueError) as exc:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
    peers = [{"id": m.id, "raft": m.raft, "grpc": m.grpc} for m in members]
    saved = membership.adopt(ctx.config, cluster_id, peers, secrets["raft_password"], secrets["smk"])
    log.warning("joined cluster %s: earlier data archived in %s; restarting as its member", cluster_id, saved)
    ctx.request_restart()
    return str(saved)
