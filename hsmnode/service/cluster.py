"""Cluster use cases: this member's status and the cluster's (the fan-out to the other members and
their lag), the member directory and membership changes (the mechanics in membership.py), joining
a cluster, cluster bootstrap, fault injection."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from hsmnode import crypto, membership
from hsmnode.crypto.sealing import SealError, issued_by, open_sealed, seal
from hsmnode.domain.access import authorize
from hsmnode.domain.commands import DebugFail, InitCluster
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.permissions import DEFAULT_ACCOUNTS
from hsmnode.replication import RaftRole, ReplicationError
from hsmnode.service import membership as changes
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext
from hsmnode.service.standing import Standing
from hsmnode.sessions import SessionKind

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


UNREACHABLE = RaftRole.UNREACHABLE.value  # the role cluster status gives a member that did not answer


@dataclass(frozen=True)
class MemberStatus:
    """One member in cluster status: `listed` in the directory, a Raft `voter`, and its `lag`
    (applied entries behind the most advanced member that answered; 0 when unreachable)."""

    id: str
    address: str
    raft_address: str
    role: str
    applied_index: int
    state_digest: str
    voter: bool
    listed: bool
    lag: int = 0


@dataclass(frozen=True)
class ClusterStatus:
    cluster_id: str
    leader: str
    term: int
    members: tuple[MemberStatus, ...]
    removed_from: str


@dataclass(frozen=True)
class JoinBundle:
    cluster_id: str
    members: tuple[MemberAddress, ...]
    sealed: bytes  # the Raft secret and the SMK, sealed to the joining node's certificate


class PeerAnswer(Protocol):
    """What cluster status reads of another member's NodeStatus answer."""

    @property
    def role(self) -> str: ...
    @property
    def applied_index(self) -> int: ...
    @property
    def state_digest(self) -> str: ...


class Peers(Protocol):
    """Asks other members for their status (server/peers.py, over mutual TLS)."""

    def node_statuses(self, addresses: list[str], digest: bool = True) -> Mapping[str, PeerAnswer | None]: ...


class ClusterService:
    def __init__(self, ctx: NodeContext, standing: Standing, peers: Peers, smk_check: str = "") -> None:
        self._ctx = ctx
        self._standing = standing
        self._peers = peers
        self._smk_check = smk_check
        self._incarnation = uuid.uuid4().hex[:16]  # this process's: a restart changes it
        self._adopting = threading.Lock()  # one AdoptCluster at a time
        self._restarting = False  # an adoption asked for the restart: adopt nothing more
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
        return self._members_of(self._ctx.read(lambda s: dict(s.members)))

    def _members_of(self, directory: Mapping[str, tuple[str, str]]) -> list[MemberAddress]:
        """`members` from a copy of the state's directory (member id -> (Raft, gRPC address))."""
        if not directory:
            return list(self._configured)
        return [
            MemberAddress(mid, grpc_address, raft) for mid, (raft, grpc_address) in sorted(directory.items())
        ]

    def leader_endpoint(self) -> str:
        """The client (gRPC) address of the leader this member knows, from the member directory
        (this member's own advertised address when it leads); "" when it knows no leader or the
        directory does not list it."""
        raft = self._ctx.replicator.leader_address()
        if raft is None:
            return ""
        cfg = self._ctx.config
        if raft == cfg.raft_address:
            return cfg.grpc_advertise
        return next((m.grpc for m in self.members if m.raft == raft), "")

    def member_id_for_raft(self, raft_address: str | None, members: list[MemberAddress] | None = None) -> str:
        """The id of the member at `raft_address` in `members` (default: the directory); the address
        itself when none is, "" for None."""
        if raft_address is None:
            return ""
        for member in self.members if members is None else members:
            if member.raft == raft_address:
                return member.id
        return raft_address

    def node_status(self, digest: bool = True) -> NodeStatus:
        """This member's status; its state digest (domain/state.py) unless not `digest` (then "").
        One short read under the state lock (the digest costs one hash per key changed since the last
        status), so a status waits behind at most one apply."""
        raft = self._ctx.replicator.status()
        state_digest, replicated_id, directory = self._ctx.replicator.read(
            lambda s: (s.digest() if digest else "", s.cluster_id or "", dict(s.members))
        )
        members = self._members_of(directory)
        cfg = self._ctx.config
        return NodeStatus(
            id=cfg.node_id,
            cluster_id=cfg.cluster_id,
            address=cfg.grpc_advertise,
            raft_address=cfg.raft_address,
            role=raft.role,
            term=raft.term,
            leader=self.member_id_for_raft(raft.leader_address, members),
            commit_index=raft.commit_index,
            applied_index=raft.applied_index,
            state_digest=state_digest,
            has_quorum=raft.has_quorum,
            ready=raft.ready,
            replicated_cluster_id=replicated_id,
            node_certificate=self._ctx.node_cert_pem.decode(),
            members=len(members),
            removed_from=self._standing.removed_from,
            raft_configuration=tuple(sorted(self._ctx.replicator.raft_configuration())),
            directory=tuple(sorted(raft for raft, _ in directory.values())),
            incarnation=self._incarnation,
        )

    def status(self, with_digest: bool = True) -> ClusterStatus:
        """Every member this one knows of, with what each answers (in parallel, briefly): the
        directory's members, then Raft voters it no longer lists (a removal to complete). Without
        `with_digest`, every member's state digest is left empty (SDK discovery). The leader is ""
        when this member is not connected to a majority (Raft: no quorum, no leader it can vouch for)."""
        me = self.node_status(with_digest)
        config = set(me.raft_configuration)
        entries = [(m.id, m.grpc, m.raft, True) for m in self.members]
        listed = {raft for _, _, raft, _ in entries}
        departed = {
            raft: (mid, grpc_address)
            for mid, (raft, grpc_address, _) in self._ctx.read(lambda s: dict(s.departed)).items()
        }
        for raft in sorted(config - listed):
            mid, grpc_address = departed.get(raft, (raft, ""))
            entries.append((mid, grpc_address, raft, False))
        answers = self._peers.node_statuses(
            [g for mid, g, _, _ in entries if mid != me.id and g], with_digest
        )
        found: list[tuple[str, str, str, str, int, str, bool]] = []
        for mid, grpc_address, raft, is_listed in entries:
            if mid == me.id:
                role, applied, digest = me.role, me.applied_index, me.state_digest
            else:
                answer = answers.get(grpc_address)
                role = answer.role if answer else UNREACHABLE
                applied = answer.applied_index if answer else 0
                digest = answer.state_digest if answer else ""
            found.append((mid, grpc_address, raft, role, applied, digest, is_listed))
        newest = max((applied for *_, role, applied, _, _ in found if role != UNREACHABLE), default=0)
        members = tuple(
            MemberStatus(
                id=mid,
                address=grpc_address,
                raft_address=raft,
                role=role,
                applied_index=applied,
                state_digest=digest,
                voter=raft in config,
                listed=is_listed,
                lag=newest - applied if role != UNREACHABLE else 0,
            )
            for mid, grpc_address, raft, role, applied, digest, is_listed in found
        )
        # a member cut off from the majority knows no current leader: the one it names may be dead
        # (a follower keeps the last leader it heard until an election it cannot win)
        leader = me.leader if me.has_quorum else ""
        return ClusterStatus(me.cluster_id, leader, me.term, members, me.removed_from)

    # --- membership (the mechanics: membership.py) ------------------------------

    def add_member(self, call: Call, member_id: str, raft: str, grpc_address: str) -> list[str]:
        """Add a member (directory, then Raft); the member ids after it."""
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)
        changes.add_member(
            self._ctx, claims.actor, member_id, raft, grpc_address, call.request_id, call.timeout
        )
        return [m.id for m in self.members]

    def remove_member(self, call: Call, member_id: str) -> list[str]:
        """Remove a member, live or dead (directory, then Raft); the member ids after it."""
        claims = self._ctx.claims(call, SessionKind.APPLIANCE)

        def applied_by(address: str) -> int | None:
            answer = self._peers.node_statuses([address])[address]
            return answer.applied_index if answer else None

        changes.remove_member(self._ctx, claims.actor, member_id, call.request_id, call.timeout, applied_by)
        return [m.id for m in self.members]

    def join_bundle(self, call: Call, node_certificate: str) -> JoinBundle:
        """The cluster's id, members and (sealed to the joiner's node certificate) Raft secret and SMK."""
        ctx = self._ctx
        actor = ctx.claims(call, SessionKind.APPLIANCE).actor
        now = ctx.clock_ms()
        ctx.read(lambda s: authorize(s, actor, "cluster.member", now))
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
        return JoinBundle(ctx.config.cluster_id, tuple(self.members), seal(cert, secrets_json.encode()))

    def adopt(self, call: Call, cluster_id: str, members: list[MemberAddress], sealed: bytes) -> str:
        """On the joining node: archive its data, adopt the cluster, restart as its member; the archive.

        A member removed from this very cluster joins it again on the bundle alone (it serves no
        session); a node of another cluster needs an appliance session that may change membership.
        One adoption at a time per data dir. A repeated request id answers the first adoption's
        archive and does nothing more, also after the restart (its session is gone by then: the
        request id, 128 random bits over mutual TLS, is what it shows). Raises DomainError
        UNAVAILABLE while the node restarts after another adoption."""
        _ = call.caller  # a certificate is needed in any case
        with self._adopting:
            earlier = membership.adopted_by(self._ctx.config.data_dir, call.request_id)
            if earlier is not None:
                return earlier
            if self._restarting:
                raise DomainError(
                    ErrorCode.UNAVAILABLE,
                    "this node is restarting as a cluster member after a join: ask again in a few seconds",
                )
            if cluster_id == self._ctx.config.cluster_id:
                saved = rejoin_cluster(self._ctx, cluster_id, members, sealed, call.request_id)
            else:
                claims = self._ctx.claims(call, SessionKind.APPLIANCE)
                saved = adopt_cluster(self._ctx, claims.actor, cluster_id, members, sealed, call.request_id)
            self._restarting = True  # nothing more to adopt before the restart
            return saved

    def bootstrap_if_leader(self) -> None:
        """The leader binds a fresh replicated state to the configured cluster id (once)."""
        if self._ctx.replicator.status().role != RaftRole.LEADER:
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

    def fail_apply(self, call: Call, reason: str) -> None:
        if not self._ctx.config.fault_injection:
            raise DomainError(
                ErrorCode.PERMISSION_DENIED,
                "fault injection is disabled on this member (set [debug] fault_injection = true in its config)",
            )
        self._ctx.submit(DebugFail, call.caller.cert_actor, call.request_id, call.timeout, reason=reason)


def adopt_cluster(
    ctx: NodeContext,
    caller_actor: str,
    cluster_id: str,
    members: list[MemberAddress],
    sealed: bytes,
    request_id: str = "",
) -> str:
    """On the joining node: archive, adopt the cluster's identity, and restart as its member."""
    now = ctx.clock_ms()
    own_members = ctx.read(lambda s: (authorize(s, caller_actor, "cluster.member", now), len(s.members))[1])
    if ctx.config.peers or own_members > 1:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"this node is a member of cluster {ctx.config.cluster_id} with {max(own_members, len(ctx.config.peers) + 1)} "
            "members: remove it there (hsmnode cluster remove-member) before it joins another",
        )
    return _adopt(ctx, cluster_id, members, sealed, request_id)


def rejoin_cluster(
    ctx: NodeContext, cluster_id: str, members: list[MemberAddress], sealed: bytes, request_id: str = ""
) -> str:
    """A member removed from its cluster joins it again: archive, drop its Raft state, restart fresh.

    A removed member serves no client, so no session authorizes this: the bundle does. Only a
    cluster admin gets one (JoinBundle), sealed to this node's certificate, and it must carry
    this cluster's Raft secret. (By the time the bundle arrives the cluster has added the
    member back, so it may no longer see itself as removed.)"""
    try:
        secrets = json.loads(open_sealed(ctx.node_key_pem, sealed))
    except (SealError, ValueError) as exc:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
    if secrets.get("raft_password") != ctx.config.raft_password():
        raise DomainError(
            ErrorCode.PERMISSION_DENIED, f"the join bundle does not carry cluster {cluster_id}'s Raft secret"
        )
    return _adopt(ctx, cluster_id, members, sealed, request_id)


def _adopt(
    ctx: NodeContext, cluster_id: str, members: list[MemberAddress], sealed: bytes, request_id: str
) -> str:
    if not any(m.raft == ctx.config.raft_address for m in members):
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, "the cluster has not added this node as a member yet"
        )
    try:
        secrets = json.loads(open_sealed(ctx.node_key_pem, sealed))
    except (SealError, ValueError) as exc:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
    peers = [{"id": m.id, "raft": m.raft, "grpc": m.grpc} for m in members]
    saved = membership.adopt(
        ctx.config, cluster_id, peers, secrets["raft_password"], secrets["smk"], request_id
    )
    log.warning("joined cluster %s: earlier data archived in %s; restarting as its member", cluster_id, saved)
    ctx.request_restart()
    return str(saved)
