"""The pysyncobj adapter: `propose(command) -> Result`, Raft status, snapshot hooks; the state
machine it replicates is `ReplicatedState` (hsmnode/replicated_state.py).

Hazards this file exists to contain (notes-pysyncobj-grpc.md §1, §3, §8):
- exactly one replicated entry point, `apply(payload: bytes)`, plus the no-op
  `barrier()`. pysyncobj numbers replicated methods by sorted name, so this set
  is frozen: never add, rename or remove one (a journal would replay into the
  wrong method);
- nothing escapes `apply`: an exception that reached pysyncobj would stall every
  member forever and replay on restart. Undecodable bytes and unexpected errors
  become INVALID_ARGUMENT / INTERNAL results, logged with the command;
- snapshots are versioned plain data, never pickled domain classes; the
  conversion runs in the child that pysyncobj forks to write the dump, so the
  tick thread never pays for it;
- readers on gRPC threads take the same lock as apply.

The Raft rules pysyncobj lacks (PreVote, leader stickiness, a lease from proof, the
append rule, durable acknowledgements, transport limits) live in `hsmnode.raft`; this
adapter builds its HsmSyncObj. Without `durable`, acknowledged writes survive process
crashes (the page cache outlives the process), not a power loss of a majority of members;
with it, every acknowledged entry was fsynced on a majority first (hsmnode/raft/durable.py).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from pysyncobj import FAIL_REASON, SyncObjConf
from pysyncobj.serializer import SERIALIZER_STATE
from pysyncobj.syncobj import SyncObjException

from hsmnode.domain.batch import encode_batch, pack
from hsmnode.domain.commands import Command
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState
from hsmnode.raft.durable import FsyncUnavailable, check_fsync
from hsmnode.raft.engine import EngineOptions, HsmSyncObj
from hsmnode.raft.together import propose_together
from hsmnode.raft.transport import TransportLimits
from hsmnode.replicated_state import ReplicatedState

log = logging.getLogger(__name__)
T = TypeVar("T")

JOURNAL_FILE = "raft.journal"
DUMP_FILE = "raft.dump"
RAFT_FILE_PREFIXES = (JOURNAL_FILE, DUMP_FILE)


class RaftRole(enum.StrEnum):
    """A member's role as its status reports it: pysyncobj's Raft state (0, 1, 2), UNKNOWN for another,
    and, in a cluster status, UNREACHABLE for a member that did not answer. RaftStatus holds the value."""

    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"


_ROLE = {0: RaftRole.FOLLOWER, 1: RaftRole.CANDIDATE, 2: RaftRole.LEADER}
_NOT_APPLIED = {
    FAIL_REASON.MISSING_LEADER: "no leader is elected yet",
    FAIL_REASON.NOT_LEADER: "the member this write was sent to is no longer the leader",
    FAIL_REASON.DISCARDED: "another entry won the log position (leader change)",
    FAIL_REASON.REQUEST_DENIED: "the leader refused the request",
}
_UNKNOWN = {
    FAIL_REASON.LEADER_CHANGED: "the leader changed before the write committed",
    FAIL_REASON.UNKNOWN_OUTCOME: "the outcome is unknown",
    "Timeout": "the write did not commit in time",
}


class ReplicationError(Exception):
    """A write that did not produce a Result.

    `kind` is "unavailable" (not applied; try another member), "unknown_outcome"
    (may have been applied: retry with the same request_id) or "busy" (queue full).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class RaftStatus:
    role: str
    term: int
    leader_address: str | None
    commit_index: int
    applied_index: int
    has_quorum: bool
    ready: bool


@dataclass(frozen=True)
class RaftSettings:
    self_address: str
    partner_addresses: tuple[str, ...]
    data_dir: Path
    password: str
    election_timeout_min: float = 0.5
    election_timeout_max: float = 1.0
    heartbeat_interval: float = 0.1
    leader_fallback: float = 2.0
    compaction_min_entries: int = 5000
    lease: float = 2.0
    durable: bool = False
    max_frame_bytes: int = TransportLimits.max_frame_bytes
    handshake_deadline: float = TransportLimits.handshake_deadline

    def engine_options(self) -> EngineOptions:
        """Start-up wait: one maximal election timeout to hear a leader before asking for votes;
        writes need a quorum proof no older than that; connect timeout: two maximal election
        timeouts (at least 1 s)."""
        return EngineOptions(
            lease=self.lease,
            election_timeout_min=self.election_timeout_min,
            startup_wait=self.election_timeout_max,
            contact_window=self.election_timeout_max,
            durable=self.durable,
            limits=TransportLimits(
                max_frame_bytes=self.max_frame_bytes,
                handshake_deadline=self.handshake_deadline,
                connect_timeout=max(1.0, 2 * self.election_timeout_max),
            ),
        )


class Replicator:
    """One member's Raft participation. Construct it on a thread that lives as long as the node:
    pysyncobj's tick thread stops when the constructing thread exits."""

    def __init__(self, settings: RaftSettings, initial_state: HsmState | None = None) -> None:
        self._settings = settings
        if settings.durable:
            try:
                check_fsync(settings.data_dir)
            except FsyncUnavailable as exc:
                raise OSError(str(exc)) from None
        self.consumer = ReplicatedState(initial_state)
        self.consumer.compact_after = settings.compaction_min_entries
        self._count_lock = threading.Lock()
        conf = SyncObjConf(
            password=settings.password,
            appendEntriesUseBatch=False,
            raftMinTimeout=settings.election_timeout_min,
            raftMaxTimeout=settings.election_timeout_max,
            appendEntriesPeriod=settings.heartbeat_interval,
            leaderFallbackTimeout=settings.leader_fallback,
            connectionTimeout=600.0,
            # redial a lost peer within a heartbeat: a restarted follower hears the leader at once
            connectionRetryTime=settings.heartbeat_interval,
            tcp_keepalive=(5, 2, 3),
            dynamicMembershipChange=True,
            journalFile=str(settings.data_dir / JOURNAL_FILE),
            fullDumpFile=str(settings.data_dir / DUMP_FILE),
            logCompactionMinEntries=settings.compaction_min_entries,
            bindAddress=settings.self_address,  # not 0.0.0.0: only the configured interface
            maxBindRetries=3,
            bindRetryTime=0.2,
        )
        self._obj = HsmSyncObj(
            settings.self_address,
            list(settings.partner_addresses),
            conf=conf,
            consumers=[self.consumer],
            options=settings.engine_options(),
        )
        try:
            self._obj.waitBinded()
        except SyncObjException:
            self._obj.destroy()
            raise OSError(
                f"cannot bind the Raft port {settings.self_address}: is it already in use?"
            ) from None

    # --- writes -----------------------------------------------------------

    def propose(self, cmd: Command, timeout: float, payload: bytes | None = None) -> Result:
        """Replicate `cmd` and return its Result as applied on this member. `payload`: `cmd.encode()`
        when the caller has it already."""
        self._require_leader()
        try:
            result: Result = self.consumer.apply(
                cmd.encode() if payload is None else payload, sync=True, timeout=timeout
            )
        except SyncObjException as exc:
            raise _translate(exc.errorCode) from None
        return result

    def propose_many(
        self, payloads: list[bytes], timeouts: list[float], batch: bool = True
    ) -> list[Result | ReplicationError]:
        """Per encoded command, in order: its Result as applied here, or the ReplicationError `propose`
        would raise. All queued before any is awaited (raft/together.py), so group commit sends them in
        one round; `timeouts[i]` (s) bounds command i's wait. With `batch` and a leader whose every
        voter reads batch entries (raft/features.py), consecutive commands share one Raft entry
        (domain/batch.py, within its size limits): one entry's Raft work for many commands, each
        still its own Result; else one entry each. Raises ReplicationError("unavailable") before
        queueing without a leader with a quorum."""
        self._require_leader()
        if batch and len(payloads) > 1 and self._obj.reads_everywhere("batch"):
            groups = pack([len(p) for p in payloads])
        else:
            groups = [[i] for i in range(len(payloads))]
        entries = [payloads[g[0]] if len(g) == 1 else encode_batch([payloads[i] for i in g]) for g in groups]
        batched = [len(g) for g in groups if len(g) > 1]
        if batched:
            with self._count_lock:  # these two counters are ours, not the tick thread's
                self._obj.counters["batch_entries"] += len(batched)
                self._obj.counters["batched_commands"] += sum(batched)
        entry_of = [0] * len(payloads)
        slot = [0] * len(payloads)  # the command's place within its entry
        for e, group in enumerate(groups):
            for place, command in enumerate(group):
                entry_of[command], slot[command] = e, place
        found = propose_together(self.consumer.apply, entries, timeouts, entry_of)
        return [
            _translate("Timeout")
            if outcome is None
            else _translate(outcome[1])
            if outcome[1] != FAIL_REASON.SUCCESS
            else _one_of(outcome[0], slot[i], len(groups[entry_of[i]]))
            for i, outcome in enumerate(found)
        ]

    def barrier(self, timeout: float) -> None:
        """Return once everything committed before this call is applied here (linearizable read)."""
        self._require_leader()
        try:
            self.consumer.barrier(sync=True, timeout=timeout)
        except SyncObjException as exc:
            raise _translate(exc.errorCode) from None

    def _require_leader(self) -> None:
        # the three facts read directly: getStatus() builds a dict of every peer's indexes (every write)
        obj = self._obj
        if obj._getLeader() is None or not obj.hasQuorum or not obj.live_quorum():
            raise ReplicationError(
                "unavailable",
                "this member has no leader with a quorum (election in progress or cluster partitioned)",
            )

    # --- reads ------------------------------------------------------------

    def read(self, fn: Callable[[HsmState], T]) -> T:
        with self.consumer.lock:
            return fn(self.consumer.state)

    def read_indexed(self, fn: Callable[[HsmState], T]) -> tuple[T, int]:
        """`fn(state)` and the Raft index of the last command in that state, read together under the
        state lock (a consistent snapshot at a known index). Call it after this member applied a command
        of its own (a write or `barrier`): before that, or right after a snapshot install, the index is 0."""
        with self.consumer.lock:
            return fn(self.consumer.state), self.consumer.state_index

    def applied_index(self) -> int:
        return int(self._obj.raftLastApplied)

    def is_ready(self) -> bool:
        """pysyncobj's readiness: this member has applied its log up to the commit index it found
        on its first contact with a leader (its state is the cluster's, not a restart's partial replay)."""
        return bool(self._obj.isReady())

    def wait_applied(self, index: int, timeout: float) -> bool:
        """Wait until this member has applied `index`. pysyncobj advances its applied index just
        after `apply` returns (and notifies), so the wait re-checks on a short period too."""
        deadline = time.monotonic() + timeout
        with self.consumer.applied:
            while self.applied_index() < index:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.consumer.applied.wait(min(remaining, 0.01))
        return True

    def leader_address(self) -> str | None:
        """The Raft address of the leader this member knows (itself when it leads), None for none.
        Cheap (one attribute read, no getStatus()): the rpc wrapper asks it on every write's answer."""
        leader = self._obj._getLeader()
        return None if leader is None else str(leader)

    def status(self) -> RaftStatus:
        s = self._obj.getStatus()
        leader = s["leader"]
        return RaftStatus(
            role=_ROLE.get(s["state"], RaftRole.UNKNOWN).value,
            term=int(s["raft_term"]),
            leader_address=str(leader) if leader is not None else None,
            commit_index=int(s["commit_idx"]),
            applied_index=int(s["last_applied"]),
            has_quorum=bool(s["has_quorum"]),
            ready=bool(self._obj.isReady()),
        )

    def change_membership(self, add: bool, raft_address: str, timeout: float) -> None:
        """Add or remove one Raft member through the leader (pysyncobj allows one change at a time)."""
        self._require_leader()
        done = threading.Event()
        outcome: list[Any] = []

        def finished(_result: Any, error: Any) -> None:
            outcome.append(error)
            done.set()

        if add:
            self._obj.addNodeToCluster(raft_address, callback=finished)
        else:
            self._obj.removeNodeFromCluster(raft_address, callback=finished)
        if not done.wait(timeout):
            raise ReplicationError(
                "unknown_outcome", "the membership change did not commit in time; check cluster status"
            )
        error = outcome[0]
        if error == FAIL_REASON.REQUEST_DENIED:
            raise ReplicationError(
                "busy", "another membership change is in progress (or the leader is new): retry in a moment"
            )
        if error != FAIL_REASON.SUCCESS:
            raise _translate(error)

    def raft_configuration(self) -> frozenset[str]:
        """The Raft addresses in this member's configuration, itself included, read back from pysyncobj.

        pysyncobj applies a membership change when its entry reaches this member's log, before it
        commits (and rolls it back if the entry is truncated): after a barrier() the configuration
        holds every change committed before it. This is how an unknown outcome of
        change_membership() is resolved.
        """
        return frozenset([self._settings.self_address, *(node.id for node in self._obj.otherNodes)])

    def transfer_leadership(self, timeout: float) -> None:
        """Hand leadership to the most caught-up follower and wait until this member is no longer leader."""
        self._obj.transferLeadership()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status.role != RaftRole.LEADER and status.leader_address not in (
                None,
                self._settings.self_address,
            ):
                return
            time.sleep(0.05)
        raise ReplicationError("unavailable", "leadership did not move in time; retry")

    @property
    def self_address(self) -> str:
        return self._settings.self_address

    def within_lease(self) -> bool:
        """May this member serve from its local state? From proof, not status: a leader while a
        majority acknowledged a heartbeat it sent within `lease`; a follower until `lease` after
        hearing the current leader, and never past what that leader had left
        (hsmnode/raft/rules.py). Called per crypto operation and per read with min_index."""
        return bool(self._obj.lease_left() > 0)

    def require_lease(self) -> None:
        """ReplicationError("unavailable") unless within_lease(): the one refusal of the crypto path
        and of reads that must be current (min_index)."""
        if not self.within_lease():
            raise ReplicationError(
                "unavailable",
                f"this member has heard from no leader with a quorum within its {self._settings.lease:g}s lease "
                "and refuses cryptographic operations and current reads (its view of sessions and keys may "
                "be stale); try another member",
            )

    def raft_counters(self) -> dict[str, int]:
        """Counts of the Raft layer's decisions (pre-vote rounds and refusals, ignored votes,
        elections started, fsyncs, reconciled appends, batch entries proposed here and the commands
        they held) since start."""
        return dict(self._obj.counters)

    def metrics_view(self) -> dict[str, int]:
        """What the metrics read besides status(): the leader's commit index as this member last heard
        it (`leader_commit_index`) and the voters in its configuration (`members`)."""
        s = self._obj.getStatus()
        return {
            "leader_commit_index": int(s.get("leader_commit_idx") or 0),
            "members": len(self._obj.otherNodes) + 1,
        }

    def watch_snapshots(self, done: Callable[[float], None]) -> None:
        """Call `done(seconds)` on the tick thread each time this member finishes writing a snapshot
        (pysyncobj's log compaction: `serialize` forks a child, `checkSerializing` reaps it)."""
        serializer = self._obj._SyncObj__serializer
        serialize, check = serializer.serialize, serializer.checkSerializing
        started: list[float] = []

        def timed_serialize(data: Any, entry_id: Any) -> None:
            started[:] = [time.perf_counter()]
            serialize(data, entry_id)

        def timed_check() -> Any:
            state, entry_id = check()
            if state == SERIALIZER_STATE.SUCCESS and started:
                seconds = time.perf_counter() - started.pop()
                try:
                    done(seconds)
                except Exception:
                    log.exception("snapshot observer failed")
            return state, entry_id

        serializer.serialize, serializer.checkSerializing = timed_serialize, timed_check

    def force_compaction(self) -> None:
        self._obj.forceLogCompaction()

    def close(self) -> None:
        self._obj.destroy_synchronous()


def _one_of(applied: Any, place: int, count: int) -> Result:
    """Command `place`'s Result from its entry's: a batch entry answers a list (one per command), a
    plain entry or a refused batch frame one Result (for every command of it)."""
    if isinstance(applied, list):
        if len(applied) == count:
            return cast(Result, applied[place])
        return Result.error(ErrorCode.INTERNAL, f"a batch entry of {count} commands answered {len(applied)}")
    return cast(Result, applied)


def _translate(code: Any) -> ReplicationError:
    if code == FAIL_REASON.QUEUE_FULL:
        return ReplicationError("busy", "the Raft command queue is full; retry shortly")
    if code in _NOT_APPLIED:
        return ReplicationError("unavailable", f"write not applied: {_NOT_APPLIED[code]}; retry")
    reason = _UNKNOWN.get(code, f"pysyncobj failure {code!r}")
    return ReplicationError(
        "unknown_outcome", f"{reason}; it may have been applied: retry with the same request_id"
    )


def raft_files_present(data_dir: Path) -> bool:
    return (
        any(p.name.startswith(RAFT_FILE_PREFIXES) for p in data_dir.iterdir()) if data_dir.is_dir() else False
    )
