"""Several commands proposed together: all queued before any is awaited (Replicator.propose_many).

pysyncobj's replicated methods take `callback=` instead of `sync=True` (notes-pysyncobj-grpc.md
§1): the call queues the entry and returns; the callback runs on the tick thread once the entry
is applied on this member (or failed), so it only records the outcome and wakes the waiter. Queued
back to back, the entries reach the tick thread's drain together and group commit
(`group_commit.py`) sends them in one AppendEntries round. An entry may carry several commands (a
batch entry, hsmnode/domain/batch.py): each command then waits for its entry's outcome, until its
own timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# (result, pysyncobj FAIL_REASON) per entry; None: no outcome before its timeout
Outcome = tuple[Any, Any] | None


def propose_together(
    apply: Callable[..., Any],
    payloads: Sequence[bytes],
    timeouts: Sequence[float],
    entry_of: Sequence[int] | None = None,
) -> list[Outcome]:
    """`apply(payload, callback=...)` for every entry payload, then wait for each command's entry
    until the command's own timeout (s, counted from this call; the waiter is woken once, when all
    are answered, or at a timeout). `entry_of[i]`: the index in `payloads` of command i's entry
    (None: one entry per command, `timeouts` per entry). Returns per command, in order, its entry's
    (result, fail reason) or None for one still unanswered (its outcome unknown: it may commit later)."""
    entry_of = range(len(payloads)) if entry_of is None else entry_of
    done = threading.Condition()
    outcomes: list[Outcome] = [None] * len(payloads)
    remaining = [len(payloads)]
    awaited = [-1]  # the entry the waiter waits for

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
    answers: list[Outcome] = [None] * len(entry_of)
    with done:
        for command in sorted(range(len(entry_of)), key=timeouts.__getitem__):
            entry = entry_of[command]
            deadline = started + timeouts[command]
            awaited[0] = entry
            while outcomes[entry] is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                done.wait(left)
            answers[command] = outcomes[entry]
        return answers
