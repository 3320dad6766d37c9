"""HsmSyncObj: pysyncobj's SyncObj with PreVote, leader stickiness, a lease from proof,
the Raft append rule and durable mode. pysyncobj stays the engine; this subclass only
gates, annotates and reorders its messages.

Hooks into pysyncobj 0.3.17 (private names, checked at import, hence the pin):
- `_onTick`: before pysyncobj's tick, the durable flush (fsync, then held acks) and the
  election gate; group commit (`group_commit.py`) around it and in `_checkCommandsToApply`;
  after it, every FREEZE_EVERY applied entries, the state frozen out of the garbage
  collector's walks (`snapshots.freeze_long_lived`);
  the gate: an expired election timer starts a pre-vote round instead of an
  election; pysyncobj campaigns only for a term a majority pre-granted, or on the current
  leader's TimeoutNow (leadership transfer);
- `_SyncObj__onMessageReceived`: pre_vote / pre_vote_response / term_notice are ours;
  request_vote passes the stickiness rule first; append_entries records leader contact
  and lease, and is rewritten by `rules.reconcile_append`; next_node_idx records the
  leader's lease proof, and a successful one no longer moves the follower's next index
  back behind entries in flight (`group_commit.py`);
- `_SyncObj__tryLogCompaction`: held on the leader while a connected member needs a
  snapshot (`rules.hold_compaction`), and the serializer sends the last snapshot while the
  next one is written, so a transfer is neither stalled nor cut by compaction;
- `before_send` (called by HsmTransport for every Raft message): stamps appends with the
  send time and the lease left, echoes the stamp in acknowledgements, marks a transfer's
  RequestVote, and in durable mode holds acknowledgements until the journal is fsynced;
- pre-vote answers name the leader; a member whose configuration does not list it (older than
  the cluster's) contacts it until it does (`learning.LeaderLearning`);
- acknowledgements say which entry formats the member reads (`features.PeerFeatures`).

Message fields we add are ignored by plain pysyncobj; the message types we add are
dropped by it (it dispatches on known types only).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pysyncobj import SyncObj
from pysyncobj.monotonic import monotonic  # CLOCK_MONOTONIC_RAW: pysyncobj's deadlines use it
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from hsmnode.raft import durable
from hsmnode.raft.features import PeerFeatures
from hsmnode.raft.group_commit import GroupCommit
from hsmnode.raft.learning import LeaderLearning
from hsmnode.raft.rules import (
    LogPosition,
    Refusal,
    VoterView,
    follower_lease_until,
    ignore_vote_request,
    leader_lease_left,
    majority,
    may_campaign,
    prevote,
    quorum_stamp,
    reconcile_append,
)
from hsmnode.raft.snapshots import CompactionHold, freeze_long_lived
from hsmnode.raft.transport import HsmTransport, TransportLimits

log = logging.getLogger("hsmnode.raft")

PINNED_PYSYNCOBJ = "0.3.17"
if PYSYNCOBJ_VERSION != PINNED_PYSYNCOBJ:  # pragma: no cover - the hooks below name its privates
    raise ImportError(
        f"hsmnode.raft is written against pysyncobj {PINNED_PYSYNCOBJ}, found {PYSYNCOBJ_VERSION}"
    )
for _name in (
    "_SyncObj__onMessageReceived",
    "_SyncObj__onBecomeLeader",
    "_SyncObj__generateRaftTimeout",
    "_SyncObj__connectedToAnyone",
    "_SyncObj__getCurrentLogIndex",
    "_SyncObj__getCurrentLogTerm",
    "_SyncObj__setCurrentTerm",
    "_SyncObj__setState",
    "_SyncObj__sendAppendEntries",
    "_SyncObj__tryLogCompaction",
):
    if not hasattr(SyncObj, _name):  # pragma: no cover
        raise ImportError(f"pysyncobj SyncObj has no {_name}")

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
TERM_NOTICE_PERIOD = 1.0  # seconds between two term notices to the same stale leader
FAST_ELECTION_JITTER = 0.1  # seconds: spread of the pre-vote after the leader's connection dropped
FREEZE_EVERY = 1000  # applied entries between two gc freezes (snapshots.freeze_long_lived): a full
# collection then walks at most ~1,000 commands' objects (~7,000), not the whole state


@dataclass(frozen=True)
class EngineOptions:
    """Our layer's settings (seconds, bytes). `lease`: how long a member serves crypto
    without fresh proof; `startup_wait`: how long a started member waits to hear a leader
    before it may ask for votes; `durable`: fsync before acknowledging; `snapshot_hold`: how
    long the leader may put off compacting its log while a member receives a snapshot
    (rules.hold_compaction)."""

    lease: float
    election_timeout_min: float
    startup_wait: float
    contact_window: float = 0.6  # "a live quorum": proof no older than this (2 x election_timeout_max)
    durable: bool = False
    snapshot_hold: float = 60.0  # longest hold of the leader's compaction for a snapshot transfer
    limits: TransportLimits = TransportLimits()


class _JournalLog:
    """rules.LogView over pysyncobj's journal (entries are (command, index, term))."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def first_index(self) -> int:
        return int(self._journal[0][1])

    def last_index(self) -> int:
        return int(self._journal[-1][1])

    def term_at(self, index: int) -> int | None:
        offset = index - self.first_index()
        if offset < 0 or offset >= len(self._journal):
            return None
        return int(self._journal[offset][2])


class HsmSyncObj(CompactionHold, LeaderLearning, GroupCommit, PeerFeatures, SyncObj):  # type: ignore[misc]
    """SyncObj with the rules of `hsmnode.raft.rules`. Same constructor as SyncObj plus `options`."""

    _SyncObj__raftElectionDeadline: float  # pysyncobj's: monotonic time of the next election timeout

    def __init__(
        self, self_node: str, other_nodes: list[str], conf: Any, consumers: list[Any], options: EngineOptions
    ) -> None:
        # Everything the hooks read exists before SyncObj.__init__ starts the tick thread.
        now = monotonic()
        self.options = options
        self.transport_limits = options.limits
        self.counters: Counter[str] = Counter()
        self._started = now
        self._heard_leader_at: float | None = now  # start-up counts as hearing a leader
        self._voted_at: float | None = None  # last vote, pre-vote granted or own campaign
        self._fast_until = 0.0  # until then, pre-vote rounds repeat quickly (the leader's connection dropped)
        self._heard_leader_since_start = False
        self._prevote_term: int | None = None
        self._prevote_grants: set[Any] = set()
        self._prevote_won: int | None = None
        self._campaign_transfer = False
        self._acked: dict[Any, float] = {}
        self._echo: dict[Any, float] = {}
        self._lease_until = 0.0
        self._term_notices: dict[Any, float] = {}
        self._held_acks: list[tuple[Any, dict[str, Any]]] = []
        self._synced: tuple[int, int, int] | None = None
        self._durable_ready = threading.Event()
        self._init_leader_learning()
        self._init_group_commit()
        self._init_features()
        self._last_tick = now + 1.0  # the first tick comes after pysyncobj's start-up sleep
        # the applied index at the last periodic gc freeze; the first tick freezes what start-up made
        self._frozen_at = -FREEZE_EVERY
        if options.durable:
            durable.install_durable_dumps()
        super().__init__(self_node, other_nodes, conf=conf, consumers=consumers, transportClass=HsmTransport)
        if options.durable:
            durable.make_meta_durable(self._SyncObj__raftLog)
        self._install_snapshot_transfer(conf.fullDumpFile)
        self._durable_ready.set()

    # --- views ------------------------------------------------------------------

    def _last_log(self) -> LogPosition:
        return LogPosition(self._SyncObj__getCurrentLogIndex(), self._SyncObj__getCurrentLogTerm())

    def _voters(self) -> int:
        return len(self._SyncObj__otherNodes) + 1

    def _leader_stamp(self, now: float) -> float | None:
        others = self._SyncObj__otherNodes
        acked = [t for node, t in list(self._acked.items()) if node in others]
        return quorum_stamp(now, acked, self._voters())

    def _voter_view(self, now: float, count_votes: bool) -> VoterView:
        """What this member knows; with `count_votes` (pre-votes), its own recent vote, pre-vote
        grant or campaign counts as contact too. Real votes never count it: a member that pre-granted
        a candidate must then vote for it."""
        leader_ok = (
            self._SyncObj__raftState == LEADER
            and (self._leader_stamp(now) or float("-inf")) > now - self.options.election_timeout_min
        )
        heard = self._heard_leader_at
        if count_votes and self._voted_at is not None:
            heard = self._voted_at if heard is None else max(heard, self._voted_at)
        return VoterView(
            current_term=self._SyncObj__raftCurrentTerm,
            last_log=self._last_log(),
            is_leader_with_quorum=leader_ok,
            heard_leader_ago=None if heard is None else now - heard,
            election_timeout_min=self.options.election_timeout_min,
        )

    def lease_left(self, now: float | None = None) -> float:
        """Seconds this member may still serve from its proof (0: none). Any thread.

        The larger of its proof as leader (a majority acknowledged heartbeats it sent) and as
        follower (what its leader granted); neither needs a leader known right now, so crypto
        goes on through an election for as long as the last proof lasts, and a deposed leader
        keeps exactly what its acknowledgements proved."""
        now = monotonic() if now is None else now
        as_leader = (
            leader_lease_left(now, self._leader_stamp(now), self.options.lease)
            if self._acked or (self._SyncObj__raftState == LEADER)
            else 0.0
        )
        return max(as_leader, self._lease_until - now, 0.0)

    def live_quorum(self, now: float | None = None) -> bool:
        """Fresh proof that writes can commit: a leader acknowledged by a majority, or a follower that
        heard its leader, within `contact_window`. Connection status lags a silent partition by
        seconds (TCP), so a cut-off member refuses writes on this instead. Any thread."""
        now = monotonic() if now is None else now
        window = self.options.contact_window
        if self._SyncObj__raftState == LEADER:
            stamp = self._leader_stamp(now)
            return stamp is not None and stamp >= now - window
        heard = self._heard_leader_at
        return self._SyncObj__raftLeader is not None and heard is not None and heard >= now - window

    # --- the tick -----------------------------------------------------------------

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - pysyncobj's names
        started = monotonic()
        gap = started - self._last_tick
        self._last_tick = started
        if gap > self.options.election_timeout_min:
            self.counters["tick_stalls"] += 1
            log.warning("%s: Raft tick thread stalled for %.3fs (CPU starvation?)", self.selfNode, gap)
        if self.options.durable and self._durable_ready.is_set():
            self._flush_durable()
        self._forget_stale_learned(started)
        self._election_gate()
        was = self._SyncObj__raftState
        try:
            self._group_commit_tick(functools.partial(super()._onTick, timeToWait), was == LEADER)
        finally:
            self._campaign_transfer = False
        if was == LEADER and self._SyncObj__raftState != LEADER:
            log.warning(
                "%s: stepped down at term %d (no majority answered within leader_fallback, or a higher term)",
                self.selfNode,
                self._SyncObj__raftCurrentTerm,
            )
        applied = self._SyncObj__raftLastApplied
        if applied - self._frozen_at >= FREEZE_EVERY:  # between ticks: no lock held, no message half-read
            self._frozen_at = applied
            freeze_long_lived()
            self.counters["gc_freezes"] += 1

    def _election_gate(self) -> None:
        if self._SyncObj__raftState == LEADER or self.selfNode is None:
            return
        now = monotonic()
        if self._SyncObj__raftElectionDeadline >= now:
            return
        if self._SyncObj__transferInProgress:
            self._campaign_transfer = True  # TimeoutNow from the leader: campaign without pre-vote
            return
        term = self._SyncObj__raftCurrentTerm
        if self._prevote_won == term + 1:
            self._prevote_won = None
            self.counters["elections"] += 1
            log.info("%s: pre-vote granted by a majority; campaigning for term %d", self.selfNode, term + 1)
            return  # a majority pre-granted term+1: let pysyncobj campaign
        if now < self._fast_until:
            self._SyncObj__raftElectionDeadline = now + random.uniform(
                FAST_ELECTION_JITTER / 2, FAST_ELECTION_JITTER
            )
        else:
            self._SyncObj__raftElectionDeadline = now + self._SyncObj__generateRaftTimeout()
        if not self._SyncObj__connectedToAnyone():
            return
        if not may_campaign(self._heard_leader_since_start, now - self._started, self.options.startup_wait):
            return
        self._ask_prevotes(term + 1)
        if self._prevote_won == term + 1:
            self._SyncObj__raftElectionDeadline = 0  # single member: campaign in this tick
            self._prevote_won = None
            self.counters["elections"] += 1

    def _ask_prevotes(self, term: int) -> None:
        log.debug(
            "%s: asking pre-votes for term %d (deadline in %.3fs, leader %s, heard %.3fs ago)",
            self.selfNode,
            term,
            self._SyncObj__raftElectionDeadline - monotonic(),
            self._SyncObj__raftLeader,
            monotonic() - (self._heard_leader_at or 0),
        )
        self.counters["prevote_rounds"] += 1
        self._prevote_term = term
        self._prevote_grants = {self.selfNode}
        last = self._last_log()
        for node in list(self._SyncObj__otherNodes):
            self._SyncObj__transport.send(
                node,
                {"type": "pre_vote", "term": term, "last_log_index": last.index, "last_log_term": last.term},
            )
        self._check_prevote_won()

    def _check_prevote_won(self) -> None:
        if self._prevote_term is not None and len(self._prevote_grants) >= majority(self._voters()):
            self._prevote_won = self._prevote_term
            self._prevote_term = None
            self._voted_at = monotonic()  # about to campaign: grant no rival a pre-vote meanwhile

    def _flush_durable(self) -> None:
        journal = self._SyncObj__raftLog
        signature = durable.journal_signature(journal)
        if signature != self._synced:
            durable.sync_journal(journal)
            self._synced = signature
            self.counters["fsyncs"] += 1
        held, self._held_acks = self._held_acks, []
        transport = self._SyncObj__transport
        for node, message in held:
            transport.send_now(node, message)

    def sync_pending(self) -> bool:
        """True when the journal holds entries not yet fsynced (durable mode)."""
        return durable.journal_signature(self._SyncObj__raftLog) != self._synced

    # --- messages -----------------------------------------------------------------

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        try:
            message = self._inspect(node, message)
        except Exception:  # our layer must never stop pysyncobj's tick
            log.exception(
                "Raft message hook failed for %r",
                message.get("type") if isinstance(message, dict) else message,
            )
        if message is not None:
            sent_to = self._sent_ahead(node, message)
            SyncObj._SyncObj__onMessageReceived(self, node, message)
            if sent_to is not None:
                self._keep_next_index(node, sent_to)

    def _inspect(self, node: Any, message: Any) -> Any:
        kind = message.get("type") if isinstance(message, dict) else None
        now = monotonic()
        term = self._SyncObj__raftCurrentTerm
        if kind == "pre_vote":
            answer = prevote(
                self._voter_view(now, count_votes=True),
                int(message["term"]),
                LogPosition(int(message["last_log_index"]), int(message["last_log_term"])),
                own_round=self._prevote_term,
                candidate_id=str(node),
                own_id=str(self.selfNode),
            )
            if answer is not Refusal.GRANTED:
                self.counters["prevotes_refused"] += 1
            else:
                self._voted_at = now  # granted: give that candidate time to win before asking
            log.debug(
                "%s: pre-vote for %s at term %s: %s", self.selfNode, node, message["term"], answer.value
            )
            self._SyncObj__transport.send(
                node,
                {
                    "type": "pre_vote_response",
                    "term": message["term"],
                    "granted": answer is Refusal.GRANTED,
                    "current_term": term,
                    "leader": self._leader_named(),
                },
            )
            return None
        if kind == "pre_vote_response":
            self._on_named_leader(node, message.get("leader"), now)
            theirs = int(message.get("current_term", 0))
            if theirs > term and self._SyncObj__raftState != LEADER:
                self._SyncObj__setCurrentTerm(theirs, None)  # catch up on the term (no election)
                self._prevote_term = None
            elif message.get("granted") and message.get("term") == self._prevote_term:
                self._prevote_grants.add(node)
                self._check_prevote_won()
                if self._prevote_won is not None:
                    self._SyncObj__raftElectionDeadline = 0  # campaign at the next tick
            return None
        if kind == "term_notice":
            if int(message["term"]) > term and self._SyncObj__raftState == LEADER:
                log.warning(
                    "member %s is at term %s, above this leader's %s: stepping down",
                    node,
                    message["term"],
                    term,
                )
                self._SyncObj__setCurrentTerm(int(message["term"]), None)
                self._SyncObj__setState(FOLLOWER)
                self._SyncObj__raftLeader = None
            return None
        if kind == "request_vote":
            if ignore_vote_request(
                self._voter_view(now, count_votes=False), int(message["term"]), bool(message.get("transfer"))
            ):
                self.counters["votes_ignored"] += 1
                return None
            return message
        if kind == "append_entries":
            return self._on_append(node, message, now, term)
        if kind == "next_node_idx":
            self._heard_reads(node, message)
            echo = message.get("lease_echo")
            if (
                echo is not None
                and self._SyncObj__raftState == LEADER
                and echo > self._acked.get(node, float("-inf"))
            ):
                self._acked[node] = echo
        return message

    def _on_append(self, node: Any, message: dict[str, Any], now: float, term: int) -> Any:
        if message["term"] < term:
            last = self._term_notices.get(node, float("-inf"))
            if now - last >= TERM_NOTICE_PERIOD:  # a stale leader: tell it (pysyncobj stays silent)
                self._term_notices[node] = now
                self._SyncObj__transport.send(node, {"type": "term_notice", "term": term})
            return message
        self._heard_leader_at = now
        self._heard_leader_since_start = True
        self._prevote_term = None
        self._prevote_won = None
        if "lease_sent" in message:
            self._echo[node] = message["lease_sent"]
        # serve-until only grows: a new leader's first appends carry no proof yet, the old one still holds
        self._lease_until = max(
            self._lease_until, follower_lease_until(now, self.options.lease, message.get("lease_left"))
        )
        if "prevLogIdx" not in message or "transmission" in message:
            return message
        plan = reconcile_append(
            _JournalLog(self._SyncObj__raftLog),
            message["prevLogIdx"],
            message["prevLogTerm"],
            message.get("entries", []),
            int(message["term"]),
            self.raftLastApplied,
        )
        if not plan.rewritten:
            return message
        if plan.dropped:
            self.counters["entries_dropped"] += plan.dropped
            log.info(
                "Raft append from %s: dropping %d entr(y/ies) of this member after index %d that the leader "
                "does not hold (uncommitted)",
                node,
                plan.dropped,
                plan.prev_index,
            )
        self.counters["appends_reconciled"] += 1
        rewritten = dict(message)
        rewritten.update(prevLogIdx=plan.prev_index, prevLogTerm=plan.prev_term, entries=list(plan.entries))
        return rewritten

    def on_peer_lost(self, node: Any) -> None:
        """The transport lost its connection to `node` (tick thread). A dead leader's process closes
        its sockets, so a follower that loses the leader's connection need not wait out a whole
        election timeout: it forgets the leader's liveness (for stickiness and writes) and asks for
        pre-votes after a short random delay. A member that still hears the leader refuses them, so a
        dropped connection alone deposes nobody; a silent partition still takes the full timeout."""
        if node != self._SyncObj__raftLeader or self._SyncObj__raftState == LEADER:
            return
        self.counters["leader_connection_lost"] += 1
        self._heard_leader_at = None
        now = monotonic()
        # the other followers may not have seen the connection drop yet and refuse the first round:
        # ask again every FAST_ELECTION_JITTER while this lasts, not after a whole election timeout
        self._fast_until = now + self.options.election_timeout_min
        jitter = random.uniform(0.0, FAST_ELECTION_JITTER)
        self._SyncObj__raftElectionDeadline = min(self._SyncObj__raftElectionDeadline, now + jitter)

    def _SyncObj__onBecomeLeader(self) -> None:  # noqa: N802
        log.info("%s: leader for term %d", self.selfNode, self._SyncObj__raftCurrentTerm)
        self._acked = {}
        self._heard_leader_at = monotonic()
        SyncObj._SyncObj__onBecomeLeader(self)

    def before_send(self, node: Any, message: dict[str, Any]) -> bool:
        """Annotate an outgoing Raft message; False when it is held (durable acknowledgements)."""
        kind = message.get("type")
        if kind == "append_entries":
            self.counters["append_entries_sent"] += 1
            self.counters["entries_sent"] += len(message.get("entries") or ())
            now = monotonic()
            message["lease_sent"] = now
            message["lease_left"] = leader_lease_left(now, self._leader_stamp(now), self.options.lease)
            self._heard_leader_at = now
        elif kind == "next_node_idx":
            self.counters["acknowledgements_sent"] += 1
            message["lease_echo"] = self._echo.get(node)
            self._advertise(message)
            if self.options.durable and (self._held_acks or self.sync_pending()):
                self._held_acks.append((node, message))
                return False
        elif kind == "request_vote":
            self._voted_at = monotonic()  # campaigning: refuse rivals' pre-votes for a while
            if self._campaign_transfer:
                message["transfer"] = True
        elif kind == "response_vote":
            self._voted_at = monotonic()  # voted: give that candidate time to win
        return True
