"""Membership changes as one recoverable operation: the member directory and the Raft configuration.

A change is two steps that cannot be one Raft entry (pysyncobj keeps its configuration
in entries of its own): the replicated directory records the intent first, then the
Raft configuration follows it. The directory is the authority:

    add:     directory += member  ->  Raft += member
    remove:  directory -= member (a tombstone keeps its addresses)  ->  Raft -= member

- An unknown outcome from pysyncobj (timeout, leader change) is resolved by reading the
  Raft configuration back after a barrier, never by undoing the directory step: the
  change is then either effective, or still to do, and is retried.
- pysyncobj answers REQUEST_DENIED both while a new leader's no-op is uncommitted and
  for a change that is already effective (adding a voter, removing a non-voter); the
  read-back tells them apart, so a retry of a change that took effect answers success.
- The leader reconciles the Raft configuration to the directory after elections and on
  a timer (MembershipReconciler), each step audited: a half-done change completes even
  when the operator's call died with the member that ran it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.replication import RaftRole, ReplicationError
from hsmnode.service.context import NodeContext, sub_request_id

log = logging.getLogger(__name__)

# machine-readable refusal reasons (trailing metadata `x-hsm-refusal`) the SDK acts on
ASK_ANOTHER_MEMBER = "ask-another-member"  # a member asked to remove itself: send the removal elsewhere
TARGET_LEADS = "target-leads"  # the member to remove leads: ask it first, it hands leadership over

# with [debug] fault_injection = true, a change whose request id starts with this stops after its
# directory step, as if the member running it died there (tests of the reconciler)
HALF_DONE_PREFIX = "fault-half-done:"

RAFT_STEP_TIMEOUT = 5.0
DEFAULT_CHANGE_TIMEOUT = 10.0
# a removal the directory recorded this long ago is completed by the leader's reconciler; before
# that the operator's call does it, after the leaving member had the chance to see its removal
RECONCILE_GRACE_MS = 3000
RECONCILE_PERIOD = 1.0


def add_member(
    ctx: NodeContext,
    actor: str,
    member_id: str,
    raft: str,
    grpc_address: str,
    request_id: str,
    timeout: float | None,
) -> None:
    """Add a member: the directory, then Raft. Also completes an addition Raft has not confirmed,
    and answers success for one that took effect (the same id and addresses)."""
    deadline = time.monotonic() + (timeout or DEFAULT_CHANGE_TIMEOUT)
    now = ctx.clock_ms()
    listed = ctx.read(lambda s: (authorize(s, actor, "cluster.member", now), s.members.get(member_id))[1])
    if listed is None:
        ctx.once(
            c.MemberAdd,
            actor,
            sub_request_id(request_id, "directory"),
            timeout,
            lambda: dict(member_id=member_id, raft=raft, grpc=grpc_address),
        )
    elif listed != (raft, grpc_address):
        raise DomainError(
            ErrorCode.ALREADY_EXISTS,
            f"member '{member_id}' already exists (raft {listed[0]}, gRPC {listed[1]}): to give it other "
            f"addresses, remove it first (hsmnode cluster remove --member {member_id})",
        )
    log.info("adding member %s (request %s): directory done, now Raft", member_id, request_id)
    _stop_here_if_asked(ctx, request_id)
    ensure_raft(ctx, True, raft, deadline)


def _stop_here_if_asked(ctx: NodeContext, request_id: str) -> None:
    if ctx.config.fault_injection and request_id.startswith(HALF_DONE_PREFIX):
        raise ReplicationError("unknown_outcome", "fault injection: stopped after the directory step")


def remove_member(
    ctx: NodeContext,
    actor: str,
    member_id: str,
    request_id: str,
    timeout: float | None,
    applied_by: Callable[[str], int | None] | None = None,
) -> None:
    """Remove a member, live or dead: the directory (so a running member learns it and stops
    serving), then Raft. Completes a removal Raft has not confirmed (the member is then only
    a tombstone in the directory), and answers success for one that took effect."""
    deadline = time.monotonic() + (timeout or DEFAULT_CHANGE_TIMEOUT)
    now = ctx.clock_ms()
    members, departed = ctx.read(
        lambda s: (authorize(s, actor, "cluster.member", now), dict(s.members), dict(s.departed))[1:]
    )
    if member_id in members:
        raft, grpc_address = members[member_id]
    elif member_id in departed:
        raft, grpc_address = departed[member_id][:2]
    else:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"no member '{member_id}' (members: {', '.join(sorted(members)) or 'none'})",
        )
    if member_id in members and len(members) == 1:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"member '{member_id}' is the last member of the cluster and cannot be removed: "
            "add another member first, or stop it",
        )
    _check_not_self_or_leader(ctx, member_id, raft)
    if member_id in members:
        log.info("removing member %s (request %s): directory first, then Raft", member_id, request_id)
        ctx.once(
            c.MemberRemove,
            actor,
            sub_request_id(request_id, "directory"),
            timeout,
            lambda: dict(member_id=member_id),
        )
        if applied_by is not None:
            _wait_seen(ctx, grpc_address, applied_by)
    _stop_here_if_asked(ctx, request_id)
    ensure_raft(ctx, False, raft, deadline)


def _check_not_self_or_leader(ctx: NodeContext, member_id: str, raft: str) -> None:
    """A member never sees its own removal commit (the leader stops talking to it), and a leader
    cannot remove itself (pysyncobj): the removal goes through another member, after a handover."""
    replicator = ctx.replicator
    if raft == replicator.self_address:
        if replicator.status().role == RaftRole.LEADER:
            replicator.transfer_leadership(timeout=3.0)
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"member '{member_id}' cannot remove itself: send its removal to another member "
            "(it is no longer the leader)",
            reason=ASK_ANOTHER_MEMBER,
        )
    if replicator.status().leader_address == raft:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"member '{member_id}' is the leader: send its removal to it first (it hands leadership over), "
            "then to another member",
            reason=TARGET_LEADS,
        )


def _wait_seen(ctx: NodeContext, grpc_address: str, applied_by: Callable[[str], int | None]) -> None:
    """Give a leaving member that is up the chance to apply its own removal before Raft stops talking
    to it: then it refuses clients, also after a restart with its old config."""
    removal_index = ctx.replicator.applied_index()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        seen = applied_by(grpc_address)
        if seen is None or seen >= removal_index:
            return
        time.sleep(0.05)


def effective(ctx: NodeContext, add: bool, raft: str) -> bool:
    """Is `raft` a voter (add) or not (remove) in the committed Raft configuration?

    Read back after a barrier: the barrier commits behind every entry of this member's log,
    so a change seen here then is committed, and one rolled back is gone."""
    if (raft in ctx.replicator.raft_configuration()) != add:
        return False
    try:
        ctx.replicator.barrier(timeout=1.0)
    except ReplicationError:
        return False
    return (raft in ctx.replicator.raft_configuration()) == add


def ensure_raft(ctx: NodeContext, add: bool, raft: str, deadline: float) -> None:
    """Drive the Raft step of a change until the configuration shows it, or the deadline passes.

    Raises ReplicationError "unknown_outcome" at the deadline: the directory holds the change and
    the leader's reconciler completes it; a retry with the same request id waits for it again."""
    what = "addition" if add else "removal"
    last = "no attempt yet"
    while True:
        if effective(ctx, add, raft):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ctx.replicator.change_membership(add, raft, timeout=min(left, RAFT_STEP_TIMEOUT))
            continue  # confirmed by the leader: read it back
        except ReplicationError as exc:
            last = exc.message  # denied (new leader, or already done), no leader, or unknown: read back
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise ReplicationError(
        "unknown_outcome",
        f"the {what} of {raft} is recorded in the member directory, but Raft has not confirmed it in time "
        f"({last}); the leader completes it: retry with the same request_id to wait for it",
    )


class MembershipReconciler:
    """On the leader: bring the Raft configuration in line with the member directory.

    Runs after this member becomes leader and every RECONCILE_PERIOD; one Raft change per
    round (pysyncobj allows one at a time); each change is first written to the audit log
    (event `membership.reconcile`, actor node:<id>).
    """

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="membership-reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        was_leader = False
        next_round = 0.0
        while not self._stop.wait(0.1):
            is_leader = self._ctx.replicator.status().role == RaftRole.LEADER
            if is_leader and (not was_leader or time.monotonic() >= next_round):
                next_round = time.monotonic() + RECONCILE_PERIOD
                try:
                    self.run_once()
                except Exception:
                    log.exception("membership reconcile round")
            was_leader = is_leader

    def run_once(self) -> str:
        """One reconcile step; returns what it did ("" when directory and Raft agree)."""
        replicator = self._ctx.replicator
        status = replicator.status()
        if status.role != RaftRole.LEADER or not status.ready or status.applied_index < status.commit_index:
            return ""  # a new leader judges only a directory that holds everything committed
        directory, departed, bound_to = self._ctx.read(
            lambda s: (dict(s.members), dict(s.departed), s.cluster_id)
        )
        if not directory:
            return ""  # not bootstrapped yet
        if bound_to != self._ctx.config.cluster_id:
            # a restored cluster before its cluster.restore: the directory is the backup's, whose
            # members are not this cluster's (acting on it would hand leadership round in circles)
            return ""
        config = replicator.raft_configuration()
        listed = {raft: mid for mid, (raft, _) in directory.items()}
        gone = {raft: (mid, at) for mid, (raft, _, at) in departed.items()}
        now = self._ctx.clock_ms()
        if replicator.self_address not in listed:
            self._audit(
                f"handing leadership over: the directory no longer lists this member ({replicator.self_address})"
            )
            replicator.transfer_leadership(timeout=3.0)
            return "handover"
        for raft in sorted(config - set(listed)):
            if raft not in gone:
                # not a removal the directory recorded: leave it to the operator (cluster status shows it)
                continue
            mid, at = gone[raft]
            if now - at < RECONCILE_GRACE_MS:
                continue  # the operator's removal is still under way
            return self._change(
                False, raft, f"completing the removal of {mid} ({raft}): the directory no longer lists it"
            )
        for raft in sorted(set(listed) - config):
            return self._change(
                True, raft, f"completing the addition of {listed[raft]} ({raft}): the directory lists it"
            )
        return ""

    def _change(self, add: bool, raft: str, why: str) -> str:
        self._audit(why)
        try:
            self._ctx.replicator.change_membership(add, raft, timeout=RAFT_STEP_TIMEOUT)
        except ReplicationError as exc:
            log.warning("membership reconcile (%s) not done yet: %s", why, exc.message)
        return why

    def _audit(self, detail: str) -> None:
        log.warning("membership reconcile: %s", detail)
        try:
            self._ctx.propose(
                c.AuditEvent(
                    actor=f"node:{self._ctx.node_id}",
                    request_id=f"reconcile-{uuid.uuid4().hex}",
                    timestamp=self._ctx.clock_ms(),
                    event="membership.reconcile",
                    detail=detail[:1000],
                ),
                timeout=2.0,
            )
        except (DomainError, ReplicationError) as exc:
            log.warning("could not audit the membership reconcile step: %s", exc)
