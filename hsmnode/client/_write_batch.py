"""Concurrent writes of one client coalesced into batched write RPCs (Keys/GenerateBatch).

    WriteBatcher.call(write, unary)   one ordinary write's answer: unary when no other write of
                                      this client is in flight (a lone writer pays nothing), else
                                      through a batch

How writes become batches (no thread of its own: the callers take turns). A write that finds
others in flight joins the queue; one queued caller at a time is the gatherer: it waits until the
pipe has room (below), takes the oldest writes of one session token (up to `max_batch`) and sends
them (`send`, which sets every write's answer and never raises; its own write alone goes as its
unary RPC, as a lone write: a batch of one saves nothing over it), then hands the
gatherer's turn on. Every other caller waits on its own event: its answer, or its turn to gather.

When a batch may go (the pipe's room), by the client's writes in progress (`active`: queued, in
a batch or unary, counted inside `call`; by Little's law the write rate times their latency):
- light (`active` ≤ `pipe_below`): a batch goes at once, without lingering, while fewer than
  `max_inflight` are in flight, so a write waits for no batch ahead of it;
- heavy (`active` > `pipe_below`): one batch in flight at a time, its gatherer lingering at most
  `linger` s for the queue to reach `max_batch` (the callers its batch's answers woke come back
  within it): a batch carries a round's worth of writes.
PIPE_BELOW is 0: every load counts as heavy (one batch in flight), the measured better trade on
a 2-core machine. Each Raft round costs the leader ~4 ms of CPU whatever it carries (a lone write:
leader 3.9-4.5 ms, followers 1.3-1.7 each, client ~1 ms, for a ~6 ms round; 16 writes a round:
0.6 ms per write on the leader), so the leader's one GIL runs out at ~250 rounds/s: pipelined
batches of one or two at 250-400/s offered cost 11-16% more CPU per write and took no less time,
as the rounds contend for the CPU (bench/findings/writes-batches.md, "When a batch goes"). A
larger machine, or a cheaper round, may favour a light band (`pipe_below` 4, say).
The batches in flight are counted per client (one leader at a time takes them all); on the
leader, entries of batches that arrive while a round is in flight wait for it and go out together
(raft/group_commit.py, rule 3).

Each write keeps its own request id and deadline. Its answer is the response message, the HsmError
its unary RPC would have raised, or a Fallback: the batch did not settle it (its member failed,
answered UNAVAILABLE or an unknown outcome for it, or knows no batch RPC), so the caller sends it
itself through the unary RPC with its own request id, failover rules and the rest of its deadline
(`maybe_applied`: an attempt may have applied it, so a final failure is OutcomeUnknown, not
Unavailable). The batching itself is pure logic (tests/unit/test_sdk_write_batch.py); the RPCs
are `_write_send.py`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hsmnode.client._errors import HsmError

MAX_BATCH = 64  # writes per batch the SDK sends (a member takes up to 256)
MAX_INFLIGHT = 4  # batches in flight per client at most, under a light load only (module docstring)
PIPE_BELOW = 0  # writes in progress up to which the load is light (0: never; module docstring)
LINGER = 0.0005  # s a gatherer waits at most for more writes, under a heavy load only
_GRACE = 2.0  # s past its deadline a queued write still waits before giving up on its batch


@dataclass(frozen=True)
class Fallback:
    """A write its batch did not settle: send it alone (`maybe_applied`: an attempt may have applied it)."""

    maybe_applied: bool


_PENDING: Any = object()


class Wake:
    """A waiting caller's wake-up: `set` wakes its `wait` (or the next one), several sets before a
    wait count as one, and a wait consumes it (as threading.Event's set, wait, clear). One lock
    held while unset: a wake-up is one lock release, where an Event's also takes its Condition's
    lock on both sides and a waiter lock per wait (16 callers woken per batch, every batch)."""

    __slots__ = ("_unset",)

    def __init__(self) -> None:
        self._unset = threading.Lock()
        self._unset.acquire()

    def set(self) -> None:
        try:  # noqa: SIM105 - contextlib.suppress costs a context manager on every wake-up
            self._unset.release()
        except RuntimeError:  # set already, not waited for yet
            pass

    def wait(self, timeout: float) -> bool:
        """True when woken (the wake-up consumed), False after `timeout` s."""
        return self._unset.acquire(timeout=timeout)


@dataclass(eq=False)
class Write:
    """One caller's write: its request message (carrying its request_id), session token and
    deadline (time.monotonic()); `answer` is set once by its batch."""

    request: Any
    token: str
    deadline: float
    answer: Any = _PENDING
    event: Wake = field(default_factory=Wake)


# send(token, writes): one batched RPC for `writes` (all of `token`); sets each write's answer
Send = Callable[[str, list[Write]], None]
# unary(write, maybe_applied): the write as an ordinary unary RPC (its answer, or raises HsmError)
Unary = Callable[[Write, bool], Any]


class WriteBatcher:
    """The batching door of one client's writes (module docstring). Counters: `lone` writes sent
    unary alone (none other was in flight, or a gatherer found only its own write queued),
    `batches` sent, `batched` writes they carried, `pipelined` batches or lone writes sent while
    another batch was in flight, `fallbacks` writes a batch left to the unary RPC."""

    def __init__(
        self,
        send: Send,
        *,
        max_batch: int = MAX_BATCH,
        max_inflight: int = MAX_INFLIGHT,
        pipe_below: int = PIPE_BELOW,
        linger: float = LINGER,
    ) -> None:
        self._send = send
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.pipe_below = pipe_below
        self.linger = linger
        self._lock = threading.Lock()
        self._full = threading.Condition(self._lock)  # the gatherer's linger: the queue reached max_batch
        self._queue: list[Write] = []
        self._active = 0  # writes inside call()
        self._inflight = 0  # batches being sent
        self._gatherer: Write | None = None  # the queued write whose caller gathers next
        self.lone = 0
        self.batches = 0
        self.batched = 0
        self.pipelined = 0
        self.fallbacks = 0

    def call(self, write: Write, unary: Unary) -> Any:
        """`write`'s answer (a response message); raises its HsmError."""
        with self._lock:
            lone = not self._active
            self._active += 1
            if lone:
                self.lone += 1
            else:
                self._queue.append(write)
                if self._gatherer is None and self._room():
                    self._gatherer = write
                elif self._gatherer is not None and len(self._queue) >= self.max_batch:
                    self._full.notify()
        try:
            if lone:
                return unary(write, False)
            return self._settle(write, unary)
        finally:
            with self._lock:
                self._active -= 1
                if self._queue and self._inflight:  # the load may have become light: room
                    self._hand_off()

    def _room(self) -> bool:
        """(Lock held.) Whether a batch may go now (module docstring: light or heavy load)."""
        inflight = self._inflight
        return not inflight or (inflight < self.max_inflight and self._active <= self.pipe_below)

    # --- a batched write ------------------------------------------------------------------------

    def _settle(self, write: Write, unary: Unary) -> Any:
        while write.answer is _PENDING:
            if self._gatherer is write:
                self._gather(write, unary)
                continue
            left = write.deadline + _GRACE - time.monotonic()
            if not write.event.wait(max(left, 0.0)) and self._abandon(write):
                break
        answer = write.answer
        if isinstance(answer, Fallback):
            with self._lock:
                self.fallbacks += 1
            return unary(write, answer.maybe_applied)
        if isinstance(answer, HsmError):
            raise answer
        return answer

    def _abandon(self, write: Write) -> bool:
        """Past its deadline and still queued (never sent): out of the queue, to the unary RPC (which
        then reports the deadline). A write in flight keeps waiting for its batch's answer."""
        with self._lock:
            if write not in self._queue:
                return False
            self._queue.remove(write)
            if self._gatherer is write:
                self._gatherer = None
                self._hand_off()
            write.answer = Fallback(False)
            return True

    def _gather(self, me: Write, unary: Unary) -> None:
        """As the gatherer: linger, take one token's oldest writes, send them, answer them. A batch of
        the gatherer's own write alone goes as its unary RPC (a lone write's: no batch costs)."""
        with self._lock:
            heavy = self._active > self.pipe_below
            if heavy and len(self._queue) < self.max_batch and self.linger > 0:
                self._full.wait(self.linger)
            token = self._queue[0].token
            batch: list[Write] = []
            rest: list[Write] = []
            for queued in self._queue:
                (batch if queued.token == token and len(batch) < self.max_batch else rest).append(queued)
            self._queue = rest
            if self._inflight:
                self.pipelined += 1
            self._inflight += 1
            self._gatherer = None
            self._hand_off()
        try:
            if batch == [me]:
                try:
                    me.answer = unary(me, False)
                except HsmError as exc:
                    me.answer = exc
            else:
                self._send(token, batch)
        except Exception:  # send never raises; should it, the writes go alone, maybe applied
            for queued in batch:
                queued.answer = Fallback(True)
        finally:
            with self._lock:
                self._inflight -= 1
                if batch == [me]:
                    self.lone += 1
                else:
                    self.batches += 1
                    self.batched += len(batch)
                self._hand_off()
            for queued in batch:
                if queued.answer is _PENDING:
                    queued.answer = Fallback(True)
                if queued is not me:
                    queued.event.set()

    def _hand_off(self) -> None:
        """(Lock held.) The oldest queued write's caller gathers next, when a slot is free."""
        if self._gatherer is None and self._queue and self._room():
            self._gatherer = self._queue[0]
            self._gatherer.event.set()
