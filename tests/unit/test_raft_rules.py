"""The vote, lease, append and leader-learning rules of hsmnode/raft/rules.py, row by row (Raft thesis
§9.6, §4.2.3, §6.4.1; Figure 2; hsmnode/raft/learning.py)."""

from __future__ import annotations

import pytest

from hsmnode.raft.rules import (
    LogPosition,
    Refusal,
    VoterView,
    follower_lease_until,
    ignore_vote_request,
    leader_lease_left,
    leader_to_learn,
    learned_to_forget,
    may_campaign,
    prevote,
    quorum_stamp,
    reconcile_append,
)

ETO = 0.15


def view(
    term: int = 5, last: tuple[int, int] = (10, 5), leader: bool = False, heard: float | None = 1.0
) -> VoterView:
    return VoterView(
        current_term=term,
        last_log=LogPosition(*last),
        is_leader_with_quorum=leader,
        heard_leader_ago=heard,
        election_timeout_min=ETO,
    )


# proposed term, candidate (index, term), voter view, expected answer
PREVOTE_TABLE = [
    (6, (10, 5), view(), Refusal.GRANTED),
    (6, (11, 5), view(), Refusal.GRANTED),  # longer log, same term
    (6, (3, 6), view(term=6 - 1, last=(10, 5)), Refusal.GRANTED),  # newer last term wins over length
    (5, (10, 5), view(), Refusal.STALE_TERM),  # not above the voter's term
    (4, (10, 5), view(), Refusal.STALE_TERM),
    (6, (10, 5), view(heard=0.05), Refusal.LIVE_LEADER),  # heard a leader within the election timeout
    (6, (10, 5), view(heard=0.0), Refusal.LIVE_LEADER),  # just started: start-up counts as hearing one
    (6, (10, 5), view(leader=True, heard=None), Refusal.LIVE_LEADER),  # a leader with a quorum refuses
    (6, (9, 5), view(), Refusal.LOG_BEHIND),
    (6, (20, 4), view(), Refusal.LOG_BEHIND),  # older last term, however long
    (6, (10, 5), view(heard=None), Refusal.GRANTED),  # never heard a leader
    (6, (10, 5), view(heard=ETO), Refusal.GRANTED),  # exactly one election timeout ago: stale
]


@pytest.mark.parametrize(("term", "cand", "voter", "expected"), PREVOTE_TABLE)
def test_prevote_rule(term: int, cand: tuple[int, int], voter: VoterView, expected: Refusal) -> None:
    assert prevote(voter, term, LogPosition(*cand)) is expected


def test_of_two_members_asking_for_the_same_term_only_one_is_granted() -> None:
    """Both lost the dead leader's connection at once: the lower id wins the tie, a newer log wins outright."""
    a, b = "10.0.0.1:7100", "10.0.0.2:7100"
    same = LogPosition(10, 5)
    at_b = prevote(view(heard=None), 6, same, own_round=6, candidate_id=a, own_id=b)
    at_a = prevote(view(heard=None), 6, same, own_round=6, candidate_id=b, own_id=a)
    assert (at_b, at_a) == (Refusal.GRANTED, Refusal.COMPETING)
    newer = LogPosition(11, 5)  # b's log is newer: a grants b although b's id is higher
    assert prevote(view(heard=None), 6, newer, own_round=6, candidate_id=b, own_id=a) is Refusal.GRANTED
    assert prevote(view(heard=None), 6, same, own_round=7, candidate_id=b, own_id=a) is Refusal.GRANTED


def test_prevote_changes_nothing_it_is_a_question() -> None:
    voter = view()
    prevote(voter, 9, LogPosition(100, 9))
    assert voter.current_term == 5  # frozen view; the engine never changes its term for a pre-vote


@pytest.mark.parametrize(
    ("voter", "request_term", "transfer", "ignored"),
    [
        (view(heard=0.01), 6, False, True),  # sticky: a live leader is known
        (view(leader=True, heard=None), 6, False, True),  # a leader with a quorum is not deposed
        (view(heard=0.01), 6, True, False),  # leadership transfer asked by the leader itself
        (view(heard=1.0), 6, False, False),  # no live leader: vote normally
        (view(heard=0.01), 5, False, False),  # same term: pysyncobj's own rules answer, no term change
    ],
)
def test_vote_request_stickiness(voter: VoterView, request_term: int, transfer: bool, ignored: bool) -> None:
    assert ignore_vote_request(voter, request_term, transfer) is ignored


@pytest.mark.parametrize(
    ("heard", "since_start", "allowed"),
    [(False, 0.1, False), (False, 0.9, True), (True, 0.0, True), (False, 0.89, False)],
)
def test_a_started_member_waits_to_hear_a_leader(heard: bool, since_start: float, allowed: bool) -> None:
    assert may_campaign(heard, since_start, startup_wait=0.9) is allowed


def test_quorum_stamp_is_the_majoritys_oldest_acknowledged_send() -> None:
    # 5 voters: the leader (now=10) and acks of sends at 9.9, 9.5, 3.0, never
    assert quorum_stamp(10.0, [9.9, 9.5, 3.0], voters=5) == 9.5
    assert quorum_stamp(10.0, [9.9], voters=5) is None  # 2 of 5: no majority
    assert quorum_stamp(10.0, [], voters=1) == 10.0  # a single member is its own majority
    assert quorum_stamp(10.0, [4.0, 9.0], voters=3) == 9.0


def test_leader_lease_runs_from_the_send_time_of_the_proof() -> None:
    assert leader_lease_left(now=11.0, stamp=9.5, lease=2.0) == pytest.approx(0.5)
    assert leader_lease_left(now=12.0, stamp=9.5, lease=2.0) == 0.0
    assert leader_lease_left(now=10.0, stamp=None, lease=2.0) == 0.0


def test_follower_lease_never_outlives_the_leaders() -> None:
    assert follower_lease_until(100.0, 2.0, leader_left=0.3) == pytest.approx(100.3)
    assert follower_lease_until(100.0, 2.0, leader_left=5.0) == pytest.approx(102.0)
    assert follower_lease_until(100.0, 2.0, leader_left=None) == pytest.approx(
        102.0
    )  # plain pysyncobj leader


# --- the append rule ----------------------------------------------------------------


class ListLog:
    def __init__(self, terms: list[int], first: int = 1) -> None:
        self.terms = terms  # terms[i] is the term at index first + i
        self.first = first

    def first_index(self) -> int:
        return self.first

    def last_index(self) -> int:
        return self.first + len(self.terms) - 1

    def term_at(self, index: int) -> int | None:
        i = index - self.first
        return self.terms[i] if 0 <= i < len(self.terms) else None


def entries(*pairs: tuple[int, int]) -> list[tuple[object, int, int]]:
    return [(b"cmd", idx, term) for idx, term in pairs]


def test_append_at_the_end_passes_unchanged() -> None:
    log = ListLog([1, 1, 2])
    plan = reconcile_append(log, 3, 2, entries((4, 2)), leader_term=2, last_applied=3)
    assert not plan.rewritten and plan.prev_index == 3


def test_append_pysyncobj_would_reject_passes_unchanged() -> None:
    log = ListLog([1, 1, 2])
    assert not reconcile_append(log, 5, 2, entries((6, 2)), 2, 3).rewritten  # follower lacks prev
    assert not reconcile_append(log, 3, 1, entries((4, 2)), 2, 3).rewritten  # prev term differs


def test_stale_resend_of_applied_entries_truncates_nothing() -> None:
    """The case behind pysyncobj's CRITICAL 'truncating already-applied log entries': a resend
    after a reset carries entries the follower already holds and applied."""
    log = ListLog([1, 1, 2, 2, 2, 2])  # indices 1..6, applied through 6
    plan = reconcile_append(log, 2, 1, entries((3, 2), (4, 2)), leader_term=2, last_applied=6)
    assert plan.rewritten and plan.dropped == 0
    assert (plan.prev_index, plan.prev_term, list(plan.entries)) == (6, 2, [])
    assert plan.skipped == 2


def test_heartbeat_with_old_prev_keeps_an_unapplied_tail_of_the_leaders_term() -> None:
    log = ListLog([1, 1, 2, 2, 2, 2])  # applied through 3; 4..6 are of the leader's term 2
    plan = reconcile_append(log, 2, 1, [], leader_term=2, last_applied=3)
    assert (plan.prev_index, plan.dropped) == (6, 0)


def test_new_entries_past_the_end_are_appended_after_the_matched_prefix() -> None:
    log = ListLog([1, 1, 2])
    plan = reconcile_append(log, 1, 1, entries((2, 1), (3, 2), (4, 2), (5, 2)), leader_term=2, last_applied=1)
    assert plan.rewritten and (plan.prev_index, plan.prev_term) == (3, 2)
    assert [e[1] for e in plan.entries] == [4, 5] and plan.dropped == 0


def test_a_real_conflict_is_truncated_from_the_conflict_on() -> None:
    log = ListLog([1, 1, 2, 2, 2])  # 3..5 of an old leader at term 2, never committed
    plan = reconcile_append(log, 2, 1, entries((3, 3), (4, 3)), leader_term=3, last_applied=2)
    assert (plan.prev_index, plan.prev_term) == (2, 1)
    assert [e[1] for e in plan.entries] == [3, 4] and plan.dropped == 3


def test_an_unverified_old_term_tail_is_dropped_only_past_what_was_applied() -> None:
    log = ListLog([1, 1, 2, 2, 2])  # tail of term 2, leader now at term 3; applied through 3
    plan = reconcile_append(log, 2, 1, entries((3, 2)), leader_term=3, last_applied=3)
    assert (plan.prev_index, plan.dropped) == (3, 2)


def test_a_compacted_prev_passes_unchanged() -> None:
    log = ListLog([5, 5, 5], first=100)
    assert not reconcile_append(log, 50, 1, entries((51, 1)), 5, 101).rewritten


SELF, OLD, NEW = "127.0.0.1:9902", "127.0.0.1:9901", "127.0.0.1:9904"

# the leader a member of the configuration names, what this member's transport knows, expected
LEARN_TABLE = [
    (NEW, {OLD}, NEW),  # added after this member's configuration: contact it
    (OLD, {OLD}, None),  # already configured
    (NEW, {OLD, NEW}, None),  # already learned (or configured since)
    (SELF, {OLD}, None),  # this member itself
    (None, {OLD}, None),  # the answering member follows no leader
    ("", {OLD}, None),
    ("not-an-address", {OLD}, None),
    ("127.0.0.1:port", {OLD}, None),
    (["127.0.0.1:9904"], {OLD}, None),  # not a string at all
]


@pytest.mark.parametrize(("named", "known", "expected"), LEARN_TABLE)
def test_a_member_contacts_a_named_leader_its_configuration_does_not_list(
    named: object, known: set[str], expected: str | None
) -> None:
    assert leader_to_learn(named, SELF, known) == expected


# learned (address -> when), configured, current leader, now -> addresses to forget (grace 5 s)
FORGET_TABLE = [
    ({NEW: 0.0}, {OLD}, NEW, 60.0, []),  # the leader this member follows: kept however long
    ({NEW: 0.0}, {OLD}, None, 4.9, []),  # within the grace: still dialling, identifying
    ({NEW: 0.0}, {OLD}, None, 5.0, [NEW]),  # neither leader nor configured after the grace
    ({NEW: 0.0}, {OLD}, OLD, 9.0, [NEW]),  # another (configured) member leads now
    ({NEW: 0.0}, {OLD, NEW}, OLD, 9.0, []),  # the configuration lists it now: an ordinary member
    ({NEW: 0.0, "127.0.0.1:9903": 3.0}, {OLD}, None, 6.0, [NEW]),
]


@pytest.mark.parametrize(("learned", "configured", "leader", "now", "expected"), FORGET_TABLE)
def test_a_learned_leader_is_forgotten_once_neither_leader_nor_configured_after_the_grace(
    learned: dict[str, float], configured: set[str], leader: str | None, now: float, expected: list[str]
) -> None:
    assert learned_to_forget(learned, configured, leader, now, grace=5.0) == expected
