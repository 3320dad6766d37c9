"""A server-streaming RPC with failover before its first message (cluster backup's chunks).

    for message in call_stream(transport, stub_cls, method, request, token=..., timeout=...): ...

The first member that starts answering serves the whole stream: before its first message the call
fails over as `Transport.call` does (UNAVAILABLE, a deadline, ABORTED, a member refusing as removed
or of another cluster; the request carries its request_id), after it a broken stream raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from hsmnode.client._errors import Unavailable, error_from_rpc
from hsmnode.client._outcome import MEMBER_REFUSALS, refusal_of

FAILOVER_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED)


def call_stream(
    transport: Any,  # the Transport (importing it here would make an import cycle)
    stub_cls: Any,
    method: str,
    request: Any,
    *,
    token: str = "",
    timeout: float | None = None,
) -> Iterator[Any]:
    """`method`'s messages from the first member that answers (`timeout` s, default the transport's).
    Raises Unavailable when no member answered, or the HsmError of a member's answer or a broken stream."""
    last: grpc.RpcError | None = None
    for endpoint in transport._order(False):
        try:
            responses = getattr(stub_cls(transport.channel(endpoint)), method)(
                request, timeout=timeout or transport.timeout, metadata=transport._metadata(token)
            )
            first = next(responses)
        except StopIteration:
            return
        except grpc.RpcError as exc:
            code = exc.code()
            trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
            if code is grpc.StatusCode.FAILED_PRECONDITION and refusal_of(trailing) in MEMBER_REFUSALS:
                last = exc
                transport._drop(endpoint)
                continue
            if code in FAILOVER_CODES:
                last = exc
                transport._mark(endpoint, False)
                continue
            raise error_from_rpc(exc) from None
        transport._mark(endpoint, True)
        yield first
        try:
            yield from responses
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        transport._note_index(responses.trailing_metadata())
        return
    detail = f"; last error: {error_from_rpc(last)}" if last is not None else ""
    raise Unavailable(f"no member answered {method} ({', '.join(transport.endpoints)}){detail}")
