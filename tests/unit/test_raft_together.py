"""raft/together.py: commands queued together, each awaited until its own timeout; answers in order."""

from __future__ import annotations

import threading
import time
from typing import Any

from hsmnode.raft.together import propose_together


class TickThread:
    """A fake pysyncobj: `apply(payload, callback=)` queues; `commit()` answers the queued ones on
    another thread, as the tick thread does (payloads in `drop` are never answered)."""

    def __init__(self, drop: frozenset[bytes] = frozenset(), delay: float = 0.01) -> None:
        self.queued: list[tuple[bytes, Any]] = []
        self.drop = drop
        self.delay = delay

    def apply(self, payload: bytes, callback: Any) -> None:
        self.queued.append((payload, callback))
        if len(self.queued) == 3:
            threading.Thread(target=self.commit).start()

    def commit(self) -> None:
        time.sleep(self.delay)
        for payload, callback in self.queued:
            if payload not in self.drop:
                callback(payload.upper(), 0)


def test_all_are_queued_before_any_is_awaited_and_answered_in_order() -> None:
    tick = TickThread()
    assert propose_together(tick.apply, [b"a", b"b", b"c"], [5.0, 5.0, 5.0]) == [
        (b"A", 0),
        (b"B", 0),
        (b"C", 0),
    ]


def test_one_never_answered_is_none_at_its_own_timeout_and_the_others_answer() -> None:
    tick = TickThread(drop=frozenset({b"b"}))
    started = time.monotonic()
    outcomes = propose_together(tick.apply, [b"a", b"b", b"c"], [60.0, 0.2, 60.0])
    assert outcomes == [(b"A", 0), None, (b"C", 0)]
    assert time.monotonic() - started < 30.0  # the others did not wait for their own timeouts


def test_a_callback_run_at_once_counts() -> None:
    def refuse(payload: bytes, callback: Any) -> None:
        callback(None, 1)  # pysyncobj answers QUEUE_FULL inside the call

    assert propose_together(refuse, [b"a", b"b"], [1.0, 1.0]) == [(None, 1), (None, 1)]


def test_answers_after_one_timed_out_wake_the_waiter_without_waiting_for_their_timeouts() -> None:
    tick = TickThread(drop=frozenset({b"b"}), delay=0.3)  # committed after b's timeout
    started = time.monotonic()
    outcomes = propose_together(tick.apply, [b"a", b"b", b"c"], [30.0, 0.1, 30.0])
    assert outcomes == [(b"A", 0), None, (b"C", 0)]
    assert time.monotonic() - started < 10.0


def test_commands_sharing_an_entry_each_get_its_outcome_and_wait_until_their_own_timeout() -> None:
    tick = TickThread(drop=frozenset({b"y"}), delay=0.05)
    started = time.monotonic()
    # commands 0, 1, 3 share entry b"x"; command 2 is alone in entry b"y" (never answered)
    outcomes = propose_together(tick.apply, [b"x", b"y", b"z"], [30.0, 30.0, 0.1, 30.0], [0, 0, 1, 0])
    assert outcomes == [(b"X", 0), (b"X", 0), None, (b"X", 0)]
    assert time.monotonic() - started < 10.0
