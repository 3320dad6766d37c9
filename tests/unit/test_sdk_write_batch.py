"""The SDK's write batcher (client/_write_batch.py), with a recording `send` in place of the RPC:
a lone write goes unary, concurrent ones travel in bounded batches of one session token, every
write is answered exactly once (its answer, its error, or sent alone when its batch left it)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hsmnode.client._errors import AlreadyExists
from hsmnode.client._write_batch import Fallback, Wake, Write, WriteBatcher


class Recorder:
    """A `send` that answers each write with ("batched", request) after `delay` s; `plan` may
    override the answer per request."""

    def __init__(self, delay: float = 0.0, plan: dict[Any, Any] | None = None) -> None:
        self.delay = delay
        self.plan = plan or {}
        self.batches: list[tuple[str, list[Any]]] = []
        self.lock = threading.Lock()
        self.concurrent = 0
        self.most_concurrent = 0

    def __call__(self, token: str, writes: list[Write]) -> None:
        with self.lock:
            self.batches.append((token, [w.request for w in writes]))
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        time.sleep(self.delay)
        with self.lock:
            self.concurrent -= 1
        for w in writes:
            w.answer = self.plan.get(w.request, ("batched", w.request))


def _unary_log(delay: float = 0.0) -> tuple[list[tuple[Any, bool]], Any]:
    calls: list[tuple[Any, bool]] = []

    def unary(write: Write, maybe_applied: bool) -> Any:
        calls.append((write.request, maybe_applied))
        time.sleep(delay)
        return ("unary", write.request)

    return calls, unary


def _concurrently(batcher: WriteBatcher, unary: Any, writes: list[Write]) -> list[Any]:
    answers: list[Any] = [None] * len(writes)
    start = threading.Barrier(len(writes))

    def run(i: int) -> None:
        start.wait()
        try:
            answers[i] = batcher.call(writes[i], unary)
        except Exception as exc:
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return answers


def _write(request: Any, token: str = "t", deadline: float = 10.0) -> Write:
    return Write(request, token, time.monotonic() + deadline)


def test_a_lone_write_goes_unary_without_a_batch() -> None:
    send = Recorder()
    batcher = WriteBatcher(send)
    assert batcher.pipe_below == 0  # the default: every load heavy, one batch in flight
    calls, unary = _unary_log()
    assert batcher.call(_write("a"), unary) == ("unary", "a")
    assert batcher.call(_write("b"), unary) == ("unary", "b")
    assert send.batches == [] and calls == [("a", False), ("b", False)] and batcher.lone == 2


@pytest.mark.parametrize("pipe_below", [0, 4, 100])  # always heavy (the default), a light band, always light
def test_concurrent_writes_are_batched_bounded_and_each_answered_once(pipe_below: int) -> None:
    send = Recorder(delay=0.02)
    batcher = WriteBatcher(send, max_batch=5, max_inflight=2, pipe_below=pipe_below)
    calls, unary = _unary_log(delay=0.02)  # a lone write in flight: the others are batched
    writes = [_write(i) for i in range(40)]
    answers = _concurrently(batcher, unary, writes)
    by_request = {w.request: a for w, a in zip(writes, answers, strict=True)}
    sent = [r for _, batch in send.batches for r in batch]
    assert sorted(sent) == sorted(set(sent))  # none sent twice
    for request, answer in by_request.items():
        assert answer == (("unary", request) if (request, False) in calls else ("batched", request))
    assert len(sent) + len(calls) == 40
    assert all(len(batch) <= 5 for _, batch in send.batches)
    assert send.most_concurrent <= (1 if pipe_below == 0 else 2)  # heavy: one batch in flight
    assert batcher.batches == len(send.batches) and batcher.batched == len(sent) > 0


def test_a_batch_carries_one_session_token() -> None:
    send = Recorder(delay=0.01)
    batcher = WriteBatcher(send, max_batch=64)
    _, unary = _unary_log(delay=0.02)
    writes = [_write(i, token=f"s{i % 3}") for i in range(30)]
    _concurrently(batcher, unary, writes)
    tokens = {w.request: w.token for w in writes}
    assert send.batches
    for token, batch in send.batches:
        assert {tokens[r] for r in batch} == {token}


def test_errors_and_fallbacks_reach_their_own_callers() -> None:
    refused = AlreadyExists("label taken")
    send = Recorder(delay=0.01, plan={1: refused, 2: Fallback(True), 3: Fallback(False)})
    batcher = WriteBatcher(send, max_batch=4, pipe_below=0, linger=5.0)  # lingers until the 4 are queued
    calls, unary = _unary_log()
    blocker = threading.Event()

    def slow_unary(write: Write, maybe_applied: bool) -> Any:
        if write.request == 0:
            blocker.wait(5)  # the lone first write keeps the others batched
        return unary(write, maybe_applied)

    first = threading.Thread(target=lambda: batcher.call(_write(0), slow_unary))
    first.start()
    while batcher.lone == 0:
        time.sleep(0.001)
    writes = [_write(i) for i in (1, 2, 3, 4)]
    answers = _concurrently(batcher, slow_unary, writes)
    blocker.set()
    first.join(5)
    assert answers[0] is refused
    assert answers[1] == ("unary", 2) and (2, True) in calls  # maybe applied: resent, so stated
    assert answers[2] == ("unary", 3) and (3, False) in calls
    assert answers[3] == ("batched", 4)
    assert batcher.fallbacks == 2


def test_a_send_that_raises_leaves_each_write_to_the_unary_rpc() -> None:
    def broken(token: str, writes: list[Write]) -> None:
        raise RuntimeError("bug")

    batcher = WriteBatcher(broken, max_batch=4, pipe_below=0, linger=5.0)  # lingers until the 4 are queued
    calls, unary = _unary_log()
    hold = threading.Event()

    def held(write: Write, maybe_applied: bool) -> Any:
        if write.request == "lone":
            hold.wait(5)
        return unary(write, maybe_applied)

    lone = threading.Thread(target=lambda: batcher.call(_write("lone"), held))
    lone.start()
    while batcher.lone == 0:
        time.sleep(0.001)
    answers = _concurrently(batcher, held, [_write(i) for i in range(4)])
    hold.set()
    lone.join(5)
    assert answers == [("unary", i) for i in range(4)]
    assert sorted(r for r, maybe in calls if maybe) == [0, 1, 2, 3]


@pytest.mark.parametrize("linger", [0.0, 0.0005])
def test_no_write_waits_forever_when_its_batch_is_slow(linger: float) -> None:
    send = Recorder(delay=0.05)
    batcher = WriteBatcher(send, max_batch=2, max_inflight=1, linger=linger)
    _, unary = _unary_log(delay=0.02)
    answers = _concurrently(batcher, unary, [_write(i) for i in range(9)])
    assert all(a is not None for a in answers)


class Gate:
    """A `send` that records each batch as it starts and holds it until `release(n)` (batch n, from
    0); `unary` likewise for a write sent alone (its batch: [request]), except "lone", held in
    `hold` until that is set."""

    def __init__(self) -> None:
        self.started: list[list[Any]] = []
        self.gates: list[threading.Event] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()

    def __call__(self, token: str, writes: list[Write]) -> None:
        gate = threading.Event()
        with self.lock:
            self.started.append([w.request for w in writes])
            self.gates.append(gate)
        gate.wait(5)
        for w in writes:
            w.answer = ("batched", w.request)

    def release(self, n: int) -> None:
        self.gates[n].set()

    def unary(self, write: Write, maybe_applied: bool) -> Any:
        if write.request == "lone":
            self.hold.wait(5)
        else:
            self(write.token, [write])
        return ("unary", write.request)


def _until(condition: Any) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def _in_thread(batcher: WriteBatcher, unary: Any, request: Any, answers: dict[Any, Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.update({request: batcher.call(_write(request), unary)}))
    thread.start()
    return thread


def _held_lone(batcher: WriteBatcher, gate: Gate, answers: dict[Any, Any]) -> threading.Thread:
    """A lone write held in its unary RPC until gate.hold is set (the others then go batched)."""
    lone = _in_thread(batcher, gate.unary, "lone", answers)
    _until(lambda: batcher.lone == 1)
    return lone


def test_under_a_light_load_writes_go_at_once_beside_those_in_flight() -> None:
    gate = Gate()
    batcher = WriteBatcher(gate, max_inflight=2, pipe_below=5, linger=5.0)  # a linger would hang it
    answers: dict[Any, Any] = {}
    lone = _held_lone(batcher, gate, answers)
    threads = [_in_thread(batcher, gate.unary, 1, answers)]
    _until(lambda: len(gate.started) == 1)
    threads.append(_in_thread(batcher, gate.unary, 2, answers))
    _until(lambda: len(gate.started) == 2)  # while 1 is in flight; each alone: its unary RPC
    assert gate.started == [[1], [2]] and batcher.pipelined == 1
    threads += [_in_thread(batcher, gate.unary, r, answers) for r in (3, 4)]
    _until(lambda: batcher._active == 5)  # no slot (2 in flight): 3 and 4 queue
    assert len(gate.started) == 2
    gate.release(0)  # write 1 answered: a slot, and 3 and 4 go at once beside 2 (no linger)
    _until(lambda: len(gate.started) == 3)
    assert gate.started[2] == [3, 4] and batcher.pipelined == 2
    gate.release(1)
    gate.release(2)
    gate.hold.set()
    for thread in [lone, *threads]:
        thread.join(5)
    assert answers == {
        "lone": ("unary", "lone"),
        1: ("unary", 1),
        2: ("unary", 2),
        3: ("batched", 3),
        4: ("batched", 4),
    }
    assert batcher.batches == 1 and batcher.batched == 2 and batcher.lone == 3


def test_under_a_heavy_load_one_batch_is_in_flight_and_the_next_takes_the_queue() -> None:
    gate = Gate()
    batcher = WriteBatcher(gate, max_inflight=4, pipe_below=2, linger=0.0005)
    answers: dict[Any, Any] = {}
    lone = _held_lone(batcher, gate, answers)
    threads = [_in_thread(batcher, gate.unary, 1, answers)]
    _until(lambda: len(gate.started) == 1)
    for request in (2, 3, 4):
        threads.append(_in_thread(batcher, gate.unary, request, answers))
    _until(lambda: batcher._active == 5)
    assert gate.started == [[1]] and batcher.pipelined == 0  # queued behind 1, not sent beside it
    gate.release(0)
    _until(lambda: len(gate.started) == 2)
    assert gate.started[1] == [2, 3, 4]
    gate.release(1)
    gate.hold.set()
    for thread in [lone, *threads]:
        thread.join(5)
    assert answers == {"lone": ("unary", "lone"), 1: ("unary", 1), **{r: ("batched", r) for r in (2, 3, 4)}}


def test_a_wake_set_before_its_wait_wakes_it_and_sets_count_once() -> None:
    wake = Wake()
    assert not wake.wait(0.0)  # unset: the wait times out
    wake.set()
    wake.set()  # a second set before the wait is the same wake-up (as Event.set)
    assert wake.wait(0.0)
    assert not wake.wait(0.0)  # the wait consumed it (as Event.wait then clear)


def test_a_wake_set_from_another_thread_ends_a_blocked_wait() -> None:
    wake = Wake()
    threading.Timer(0.01, wake.set).start()
    assert wake.wait(5.0)
