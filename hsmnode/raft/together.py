"""Several commands proposed together: all queued before any is awaited (Replicator.propose_many).

pysyncobj's replicated methods take `callback=` instead of `sync=True` (notes-pysyncobj-grpc.md
§1): the call queues the command and returns; the callback runs on the tick thread once the entry
is applied on this member (or failed), so it only records the outcome and wakes the waiter. Queued
back to back, the commands reach the tick thread's drain together and group commit
(`group_commit.py`) sends them in one AppendEntries round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# (result, pysyncobj FAIL_REASON) per command; None: no outcome before its timeout
Outcome = tuple[Any, Any] | None


def propose_together(
    apply: Callable[..., Any], payloads: Sequence[bytes], timeouts: Sequence[float]
) -> list[Outcome]:
    """`apply(payload, callback=...)` for every payload, then wait for each outcome until its own
    timeout (s, counted from this call; the waiter is woken once, when all are answered, or at a
    timeout). Returns per payload, in order, (result, fail reason) or
    None for one still unanswered (its outcome unknown: it may commit later)."""
    done = threading.Condition()
    outcomes: list[Outcome] = [None] * len(payloads)
    remaining = [len(payloads)]
    awaited = [-1]  # the index the waiter waits for

    def finished(index: int) -> Callable[[Any, Any], None]:
        def callback(result: Any, error: Any) -> None:  # on the tick thread: never blocks
            with done:
                outcomes[index] = (result, error)
                remaining[0] -= 1
                # one wake-up per batch as a rule (each is a GIL hand-off away from the tick thread)
                if not remaining[0] or index == awaited[0]:
                    done.notify()

        return callback

    started = time.monotonic()
    for index, payload in enumerate(payloads):
        apply(payload, callback=finished(index))
    with done:
        for index in sorted(range(len(payloads)), key=timeouts.__getitem__):
            deadline = started + timeouts[index]
            awaited[0] = index
            while outcomes[index] is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                done.wait(left)
        return list(outcomes)
