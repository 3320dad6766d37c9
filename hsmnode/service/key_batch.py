"""GenerateBatch's use case: many key generations of one session, proposed together.

Each request gets exactly what `KeyService.generate` answers for it: the same checks and the
same `prepare` (a new key wrapped under the SMK), the same request-id contract (`NodeContext.
first_or_prepared`: a request id this member applied answers its first result), the same
refusals decided in apply (authorization, labels). What differs is the waiting: the requests
that need a proposal are all queued before any is awaited (`NodeContext.propose_many`) as batch
entries (several KeyCreate commands in one Raft entry, each applied as its own entry would be:
hsmnode/domain/batch.py; one entry each while a voter of an older version does not read them), so
group commit carries them in one AppendEntries round; each waits until its own deadline.

A request whose deadline passed before its turn (the batch's earlier requests took the time: large
RSA keys) is not run: UNAVAILABLE, not applied. A request id repeated inside the batch is proposed once and its later occurrences answer its
result (as a repeat sent after the first would), unless the first occurrence failed before its
proposal: then the later one runs on its own, as a retry would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from hsmnode.domain import commands as c
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.result import Result
from hsmnode.replication import ReplicationError
from hsmnode.service.call import ANSWER_MARGIN, Call
from hsmnode.service.context import KEY_SESSIONS, NodeContext, answer
from hsmnode.service.key_views import KeyView, described_view
from hsmnode.sessions import Claims

log = logging.getLogger(__name__)

MAX_BATCH = 256  # requests per GenerateBatch; a larger batch is refused whole


class Generation(NamedTuple):
    """One request of a batch, as `KeyService.generate` takes it; `deadline`: the time.monotonic()
    by which its caller stops waiting (None: the batch call's). A NamedTuple, not a frozen
    dataclass: one per request of every batch, built at a quarter of the cost."""

    request_id: str
    label: str
    key_type: str
    size: str
    extractable: bool
    usage: list[str]
    owner: str = ""
    deadline: float | None = None


# per request: the key created, or the error its unary Generate would have raised
Answer = KeyView | Exception
# KeyService.generation: (claims, label, key_type, size, extractable, usage, owner) -> its `prepare`
Preparation = Callable[[Claims, str, str, str, bool, list[str], str], Callable[[], dict[str, Any]]]


def _timeout(deadline: float | None, call: Call) -> float | None:
    if deadline is None:
        return call.timeout
    return max(ANSWER_MARGIN, deadline - time.monotonic() - ANSWER_MARGIN)


def _created(result: Result) -> KeyView:
    return described_view(str(result.value["object_id"]), result.value.get("key"))


def generate_batch(
    ctx: NodeContext, generation: Preparation, call: Call, requests: Sequence[Generation | Exception]
) -> list[Answer]:
    """`generation`: KeyService.generation (the unary RPC's checks and key). Per request, in order, its KeyView or its error (DomainError, ReplicationError; an unexpected
    exception is logged and returned). An Exception in `requests` (the request failed to parse) is
    its own answer. Never raises."""
    answers: list[Answer | None] = [None] * len(requests)
    claims: Claims | None = None
    refusal: DomainError | None = None
    try:
        claims = ctx.claims(call, *KEY_SESSIONS)
    except DomainError as exc:  # what every request's unary Generate answers
        refusal = exc
    proposed: dict[str, int] = {}  # request id -> the index whose proposal answers it
    repeats: list[tuple[int, int]] = []
    pending: list[int] = []
    payloads: list[bytes] = []
    timeouts: list[float | None] = []
    known = (  # the batch's repeats of applied requests, in one read of the state
        ctx.first_results(
            c.KeyCreate, claims.actor, [r.request_id for r in requests if isinstance(r, Generation)]
        )
        if claims is not None
        else {}
    )
    for index, request in enumerate(requests):
        if isinstance(request, Exception):
            answers[index] = request
            continue
        if refusal is not None or claims is None:
            answers[index] = refusal
            continue
        if request.request_id in proposed:
            repeats.append((index, proposed[request.request_id]))
            continue
        deadline = request.deadline if request.deadline is not None else call.deadline
        if deadline is not None and time.monotonic() >= deadline:  # its caller stopped waiting
            answers[index] = ReplicationError(
                "unavailable",
                "the request's deadline passed before this member ran it: not applied; "
                "retry with the same request_id",
            )
            continue
        try:
            found = ctx.first_or_prepared(
                c.KeyCreate,
                claims.actor,
                request.request_id,
                generation(
                    claims,
                    request.label,
                    request.key_type,
                    request.size,
                    request.extractable,
                    request.usage,
                    request.owner,
                ),
                known,
            )
            if isinstance(found, Result):
                answers[index] = _created(answer(found))
                continue
            payloads.append(ctx.stamped_payload(c.KeyCreate, claims.actor, request.request_id, found))
        except (DomainError, ReplicationError) as exc:
            answers[index] = exc
            continue
        except Exception as exc:
            log.exception("unexpected error preparing a GenerateBatch request")
            answers[index] = exc
            continue
        proposed[request.request_id] = index
        pending.append(index)
        timeouts.append(_timeout(request.deadline, call))
    if payloads:
        for index, outcome in zip(pending, ctx.propose_many(payloads, timeouts), strict=True):
            answers[index] = _created(outcome) if isinstance(outcome, Result) else outcome
    for index, first in repeats:
        answers[index] = answers[first]
    return [a if a is not None else DomainError(ErrorCode.INTERNAL, "no answer") for a in answers]
