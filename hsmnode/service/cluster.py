"""Cluster use cases: this member's status, the member directory, cluster bootstrap, fault injection."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
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
    node_certificate: str = ""
    members: int = 0


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
            node_certificate=self._ctx.node_cert_pem.decode(),
            members=len(self.members),
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

    step = _attempt(request_id)
    ctx.submit(MemberAdd, caller_actor, step, timeout, member_id=member_id, raft=raft, grpc=grpc_address)
    try:
        ctx.replicator.change_membership(True, raft, timeout=min(timeout or 5.0, 5.0))
    except ReplicationError:
        ctx.submit(MemberRemove, caller_actor, f"{step}/undo", timeout, member_id=member_id)
        raise


def _attempt(request_id: str) -> str:
    """A request id for one attempt's directory step. The client's retry of a membership change that
    failed (and was undone) must redo the directory step, so the step cannot be deduplicated on the
    client's id alone; the proposer stamps a fresh suffix."""
    return f"{request_id}/{uuid.uuid4().hex[:12]}"


def remove_member(
    ctx: NodeContext,
    caller_actor: str,
    member_id: str,
    request_id: str,
    timeout: float | None,
    applied_by: Callable[[str], int | None] | None = None,
) -> None:
    """Take the member out of Raft (moving leadership away first if it leads), then out of the directory."""
    from hsmnode.domain.access import authorize
    from hsmnode.domain.commands import MemberAdd, MemberRemove

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
    # the directory first, so a removed member that is still up learns it was removed and stops serving
    log.info("removing member %s (request %s): directory first, then Raft", member_id, request_id)
    step = _attempt(request_id)
    ctx.submit(MemberRemove, caller_actor, step, timeout, member_id=member_id)
    if applied_by is not None:
        # give a leaving member that is up the chance to apply its own removal before Raft stops
        # talking to it: then it refuses clients, also after a restart with its old config
        removal_index = ctx.replicator.applied_index()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            seen = applied_by(members[member_id][1])
            if seen is None or seen >= removal_index:
                break
            time.sleep(0.05)
    try:
        ctx.replicator.change_membership(False, raft, timeout=min(timeout or 5.0, 5.0))
    except ReplicationError as exc:
        log.warning("Raft removal of %s failed (%s); the directory entry is restored", member_id, exc)
        ctx.submit(
            MemberAdd,
            caller_actor,
            f"{step}/undo",
            timeout,
            member_id=member_id,
            raft=raft,
            grpc=members[member_id][1],
        )
        raise


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
    import json

    from hsmnode import membership
    from hsmnode.crypto.sealing import SealError, open_sealed
    from hsmnode.domain.access import authorize

    now = ctx.clock_ms()
    own_members = ctx.read(lambda s: (authorize(s, caller_actor, "cluster.member", now), len(s.members))[1])
    if cluster_id == ctx.config.cluster_id:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, f"this node is already a member of cluster {cluster_id}"
        )
    if ctx.config.peers or own_members > 1:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"this node is a member of cluster {ctx.config.cluster_id} with {max(own_members, len(ctx.config.peers) + 1)} "
            "members: remove it there (hsmnode cluster remove-member) before it joins another",
        )
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
