"""The vote, lease and log rules of our Raft layer, as pure functions (no clock, no I/O).

pysyncobj 0.3.17 has no PreVote, no leader stickiness, no lease and a follower that
truncates its log on any append that does not end where its log ends. The engine
(`hsmnode.raft.engine`) feeds these functions what it observed and acts on the answer,
so every rule below is tested on its own (tests/unit/test_raft_rules.py).

PreVote and stickiness (Ongaro, "Consensus: Bridging Theory and Practice", §9.6 and §4.2.3):

    a member whose election timer fired      -> asks everyone "could I win term T+1?" (pre_vote);
                                                its term does not change
    a member answering a pre_vote grants iff    T+1 > its current term
                                                and it is not a leader with a quorum
                                                and it has not heard a leader within the
                                                    minimum election timeout
                                                and the asker's log is at least as up to date
    a real RequestVote is ignored (no term    while the member heard a leader within the minimum
    change, no answer)                          election timeout, unless it is a leadership transfer
    a member that just started                  counts its start as "heard a leader" and waits
                                                `startup_wait` or until it hears one before asking
    a member that voted, pre-granted or         counts that as "heard a leader" too: the candidate it
    campaigned                                  voted for gets an election timeout to win
    a follower whose connection to the leader   forgets the leader's liveness and asks for pre-votes
    dropped (a dead process closes its sockets) after a short random delay instead of a whole
                                                election timeout; members still hearing the leader refuse

Lease from proof (thesis §6.4.1, weakened to "bounded staleness"):

    leader   serves while a majority (itself included) acknowledged a heartbeat it sent
             within `lease`; the acknowledgement echoes the send time, so the proof is
             measured on the leader's own clock from the moment of sending
    follower serves until  receipt + min(lease, what the leader said was left of its lease)

Leader learning (hsmnode/raft/learning.py): a member answering a pre-vote names the leader it
follows; a member whose configuration (older than the cluster's) does not list that leader
contacts it (`leader_to_learn`) until its configuration does, or forgets it (`learned_to_forget`).

Append rule (Raft, Figure 2, AppendEntries receiver step 3): "if an existing entry conflicts
with a new one (same index but different terms), delete the existing entry and all that
follow it" -- and only then. `reconcile_append` rewrites an incoming append so pysyncobj
never deletes a matching entry (pysyncobj deleted everything after prevLogIdx, which is what
logged "truncating already-applied log entries ... may have diverged" after leader changes).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class LogPosition:
    """The (index, term) of a member's last log entry."""

    index: int
    term: int

    def at_least_as_up_to_date_as(self, other: LogPosition) -> bool:
        """Raft §5.4.1: compare last terms, then lengths."""
        return (self.term, self.index) >= (other.term, other.index)


@dataclass(frozen=True)
class VoterView:
    """What a member knows when a vote or pre-vote request reaches it.

    `heard_leader_ago` is seconds since the last append from a leader of the current term
    (or since start-up, which counts as hearing one); None means never.
    """

    current_term: int
    last_log: LogPosition
    is_leader_with_quorum: bool
    heard_leader_ago: float | None
    election_timeout_min: float

    def heard_live_leader(self) -> bool:
        if self.is_leader_with_quorum:
            return True
        return self.heard_leader_ago is not None and self.heard_leader_ago < self.election_timeout_min


class Refusal(Enum):
    GRANTED = "granted"
    STALE_TERM = "the asker's next term is not above this member's term"
    LIVE_LEADER = "this member heard a live leader within the minimum election timeout"
    LOG_BEHIND = "the asker's log is less up to date than this member's"
    COMPETING = "this member asks for the same term and ranks first (log, then lower member id)"


def prevote(
    view: VoterView,
    proposed_term: int,
    candidate_log: LogPosition,
    own_round: int | None = None,
    candidate_id: str = "",
    own_id: str = "",
) -> Refusal:
    """Answer a pre_vote for `proposed_term`; GRANTED or the reason for refusing.

    `own_round`: the term this member is itself asking pre-votes for, if any. Two members that
    ask for the same term at once (both lost the dead leader's connection) would both win and
    split the real vote, costing a whole election timeout; so of two such askers with equally
    up-to-date logs only the one with the lower member id is granted by the other."""
    if proposed_term <= view.current_term:
        return Refusal.STALE_TERM
    if view.heard_live_leader():
        return Refusal.LIVE_LEADER
    if not candidate_log.at_least_as_up_to_date_as(view.last_log):
        return Refusal.LOG_BEHIND
    if own_round == proposed_term and not (candidate_log != view.last_log or candidate_id < own_id):
        return Refusal.COMPETING
    return Refusal.GRANTED


def ignore_vote_request(view: VoterView, request_term: int, transfer: bool) -> bool:
    """Leader stickiness for real RequestVotes: drop one (no term change, no answer) while a live
    leader is known, unless the current leader asked for the election (leadership transfer)."""
    if transfer or request_term <= view.current_term:
        return False  # same or older term: pysyncobj's own rules answer it without disruption
    return view.heard_live_leader()


def may_campaign(heard_leader_since_start: bool, since_start: float, startup_wait: float) -> bool:
    """A member that just started waits to hear a leader, or `startup_wait` seconds, before asking."""
    return heard_leader_since_start or since_start >= startup_wait


def majority(voters: int) -> int:
    return voters // 2 + 1


def quorum_stamp(now: float, acked_send_times: Iterable[float], voters: int) -> float | None:
    """The newest time T such that a majority of `voters` (the leader counting itself at `now`)
    acknowledged a heartbeat sent at or after T; None when no majority has acknowledged yet."""
    stamps = sorted([now, *acked_send_times], reverse=True)
    need = majority(voters)
    return stamps[need - 1] if len(stamps) >= need else None


def leader_lease_left(now: float, stamp: float | None, lease: float) -> float:
    """Seconds the leader may still serve (0 when it has no proof)."""
    return 0.0 if stamp is None else max(0.0, stamp + lease - now)


def follower_lease_until(received_at: float, lease: float, leader_left: float | None) -> float:
    """A follower serves until receipt + min(lease, what the leader had left when it sent)."""
    return received_at + (lease if leader_left is None else min(lease, leader_left))


# --- the append rule ------------------------------------------------------------


class LogView(Protocol):
    """A follower's log: first and last index present and the term at an index (None if absent)."""

    def first_index(self) -> int: ...
    def last_index(self) -> int: ...
    def term_at(self, index: int) -> int | None: ...


Entry = tuple[object, int, int]  # pysyncobj's (command bytes, index, term)


@dataclass(frozen=True)
class AppendPlan:
    """How to hand an append to pysyncobj: unchanged, or with a new prev position and entries.

    `dropped` counts follower entries pysyncobj will delete (a real conflict or an unverified
    older-term tail); `skipped` counts leading entries the follower already holds."""

    prev_index: int
    prev_term: int
    entries: Sequence[Entry]
    rewritten: bool
    dropped: int = 0
    skipped: int = 0


def reconcile_append(
    log: LogView,
    prev_index: int,
    prev_term: int,
    entries: Sequence[Entry],
    leader_term: int,
    last_applied: int,
) -> AppendPlan:
    """Rewrite an append so that pysyncobj (which deletes every entry after prev_index) deletes
    only what Raft allows: entries after a real conflict, or an old-term tail nobody can have
    counted. Appends pysyncobj will reject (prev missing or of another term) pass unchanged."""
    unchanged = AppendPlan(prev_index, prev_term, entries, rewritten=False)
    last = log.last_index()
    if prev_index < log.first_index() or log.term_at(prev_index) != prev_term:
        return unchanged
    # skip the leading entries the follower already holds with the same term
    matched_index, matched_term, skipped = prev_index, prev_term, 0
    for position, entry in enumerate(entries):
        index, term = entry[1], entry[2]
        mine = log.term_at(index)
        if mine is None:  # past the follower's end: append the rest, nothing deleted
            return AppendPlan(matched_index, matched_term, entries[position:], skipped > 0, 0, skipped)
        if mine != term:  # a real conflict: pysyncobj deletes from here (Raft allows it)
            return AppendPlan(
                matched_index, matched_term, entries[position:], True, last - index + 1, skipped
            )
        matched_index, matched_term, skipped = index, term, skipped + 1
    if matched_index == last:
        return AppendPlan(matched_index, matched_term, (), skipped > 0, 0, skipped)
    # every entry matched and the follower holds more: keep the tail when it provably equals the
    # leader's (Log Matching: its last entry is of the leader's term) or is committed (applied)
    last_term = log.term_at(last)
    assert last_term is not None
    if last_term == leader_term or last <= last_applied:
        return AppendPlan(last, last_term, (), True, 0, skipped)
    keep = max(matched_index, min(last_applied, last))
    keep_term = log.term_at(keep)
    assert keep_term is not None
    return AppendPlan(keep, keep_term, (), True, last - keep, skipped)


# --- snapshot transfer and log compaction -------------------------------------------


@dataclass(frozen=True)
class CompactionHold:
    """`hold`: skip this tick's compaction step; `since`: when the current hold began (None: none)."""

    hold: bool
    since: float | None


def hold_compaction(
    is_leader: bool,
    first_log_index: int,
    next_index_of_connected: Iterable[int],
    since: float | None,
    now: float,
    max_hold: float,
) -> CompactionHold:
    """Should the leader hold its log compaction (start no new snapshot; one already written is still
    installed)?

    Yes while a connected member needs a snapshot: its next index is at or below the leader's first
    log entry, so the leader sends it the dump file (or will at the next heartbeat). Compacting then
    would cut the transfer: pysyncobj sends no snapshot while it writes one and drops every transfer
    in progress when a new snapshot is installed, so a transfer that outlasts the gap between two
    compactions never completes (under sustained writes and a large state: a member that lost its
    journal stayed behind for good). A hold lasts at most `max_hold` seconds; then compaction goes
    ahead once and a new hold may begin, so a member that never completes a transfer cannot make the
    leader's log grow without bound. Followers never hold (they send no snapshots)."""
    waiting = is_leader and any(index <= first_log_index for index in next_index_of_connected)
    if not waiting:
        return CompactionHold(False, None)
    if since is None:
        return CompactionHold(True, now)
    if now - since >= max_hold:
        return CompactionHold(False, None)
    return CompactionHold(True, since)


# --- a member whose configuration is older than the cluster's -----------------------


def leader_to_learn(named_leader: object, own_address: str, known: Collection[str]) -> str | None:
    """The address to contact when a member of this member's configuration names, in its pre-vote
    answer, a leader this member's configuration does not list (None: nothing to learn; also for
    anything but a host:port). Why a configuration can be older than the cluster's, and what the
    engine does then: hsmnode/raft/learning.py."""
    if not isinstance(named_leader, str) or named_leader == own_address or named_leader in known:
        return None
    host, _, port = named_leader.rpartition(":")
    if not host or not port.isdigit():
        return None  # not a Raft address (host:port)
    return named_leader


def learned_to_forget(
    learned: Mapping[str, float], configured: Collection[str], leader: str | None, now: float, grace: float
) -> list[str]:
    """Learned addresses (address -> when learned, seconds) to stop contacting: not in this member's
    configuration, not its current leader, and learned at least `grace` seconds ago (a stale name:
    the leader changed again, or the configuration caught up without it). An address the
    configuration now lists stays, as an ordinary member."""
    return sorted(
        address
        for address, since in learned.items()
        if address not in configured and address != leader and now - since >= grace
    )
