"""Group commit's rule 5 (hsmnode/raft/group_commit.py) decided on a stand-in for SyncObj's state:
which sends after apply wait for the next round, and that a waiting one goes out at its deadline."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from hsmnode.raft import group_commit
from hsmnode.raft.group_commit import GroupCommit

LEADER, FOLLOWER = 2, 0


class _Queue:
    def __init__(self) -> None:
        self._FastQueue__queue: list[Any] = []


class _Poller:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def poll(self, timeout: float) -> None:
        self.waits.append(timeout)


class _SyncObj:
    sent: int

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802 - counts instead of pysyncobj's send
        self.sent += 1


class Leader(GroupCommit, _SyncObj):
    """The SyncObj state GroupCommit reads: log up to index 10, followers a and b caught up."""

    def __init__(self, clock: list[float]) -> None:
        self.counters: Counter[str] = Counter()
        self._init_group_commit()
        self._clock = clock
        self._SyncObj__raftState = LEADER
        self._SyncObj__commandsQueue = _Queue()
        self._SyncObj__otherNodes = {"a", "b"}
        self._SyncObj__readonlyNodes: set[Any] = set()
        self._SyncObj__connectedNodes = {"a", "b"}
        self._SyncObj__raftLog = [(b"", 9, 1), (b"", 10, 1)]
        self._SyncObj__raftNextIndex = {"a": 11, "b": 11}
        self._SyncObj__raftMatchIndex = {"a": 10, "b": 10}
        self._SyncObj__newAppendEntriesTime = 100.0  # the heartbeat is not due
        self._poller = _Poller()
        self._cut_poll_waits()
        self.sent = 0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1.0]
    monkeypatch.setattr(group_commit, "monotonic", lambda: now[0])
    return now


def test_a_commit_index_alone_waits_until_its_deadline_and_cuts_the_poll_short(clock: list[float]) -> None:
    leader = Leader(clock)
    leader._group_commit_tick(leader._send_unless_drain_follows, True)  # the send after apply
    assert leader.sent == 0 and leader.counters["commit_notices_deferred"] == 1
    leader._poller.poll(0.05)
    assert leader._poller.waits[-1] == pytest.approx(group_commit.COMMIT_NOTICE_DELAY)
    clock[0] += group_commit.COMMIT_NOTICE_DELAY / 2
    leader._group_commit_tick(lambda: None, True)
    assert leader.sent == 0
    clock[0] += group_commit.COMMIT_NOTICE_DELAY
    leader._group_commit_tick(lambda: None, True)
    assert leader.sent == 1 and leader._notice_at is None
    leader._poller.poll(0.05)
    assert leader._poller.waits[-1] == 0.05  # nothing deferred: pysyncobj's own wait


def test_a_commit_index_waiting_rides_the_next_round_of_entries(clock: list[float]) -> None:
    leader = Leader(clock)
    leader._send_unless_drain_follows()
    leader._entries_unsent = True  # the next write's entries were drained
    leader._send_appends()
    assert leader.counters["commit_notices_carried"] == 1 and leader._notice_at is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s._SyncObj__raftNextIndex.update(b=10),  # a follower lacks an entry: send it now
        lambda s: setattr(s, "_entries_unsent", True),  # entries held back by rule 3 go with it
        lambda s: setattr(s, "_SyncObj__newAppendEntriesTime", 0.5),  # the heartbeat is due
        lambda s: s._SyncObj__readonlyNodes.add("r") or s._SyncObj__connectedNodes.add("r"),  # r has nothing
    ],
)
def test_a_send_after_apply_goes_at_once_when_it_carries_more_than_the_commit_index(
    clock: list[float], change: Any
) -> None:
    leader = Leader(clock)
    change(leader)
    leader._send_unless_drain_follows()
    assert leader.sent == 1 and leader._notice_at is None


def test_a_member_that_stepped_down_drops_its_waiting_commit_index(clock: list[float]) -> None:
    leader = Leader(clock)
    leader._send_unless_drain_follows()
    leader._SyncObj__raftState = FOLLOWER
    leader._group_commit_tick(lambda: None, False)
    assert leader._notice_at is None
