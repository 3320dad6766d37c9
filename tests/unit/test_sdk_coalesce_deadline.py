"""An operation the coalescer leaves to the unary RPC keeps its own deadline (hsmnode/client/_coalesce.py):
a bulk call whose operations go unary one by one ends within the transport's timeout, not one
timeout per operation (a 3,000-item sign_many once took 15 s with a 5 s timeout across two kills)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from hsmnode.client import Unavailable
from hsmnode.client import _crypto_wire as wire
from hsmnode.client._coalesce import Coalescer
from hsmnode.pb import keys_pb2


class UnaryOnly:
    """A transport whose unary RPC records the deadline it was given, answering until it passes."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.endpoints = ("m1", "m2", "m3")
        self.index_tracker = SimpleNamespace(index=0)
        self.deadlines: list[float | None] = []

    def healthy_endpoints(self) -> list[str]:
        return []

    def unary_crypto(self, method: str, request: Any, token: str, deadline: float | None = None) -> Any:
        self.deadlines.append(deadline)
        if deadline is None or time.monotonic() >= deadline:
            raise Unavailable(f"no member answered {method} within {self.timeout}s")
        return keys_pb2.SignResponse(signature=b"s")


def oversize(n: int) -> list[bytes]:
    """`n` Sign requests each above a batch's byte limit: the unary RPC answers them."""
    return [
        keys_pb2.SignRequest(key="k", mechanism="ECDSA-SHA256", data=bytes(4096)).SerializeToString()
        for _ in range(n)
    ]


def test_operations_left_to_the_unary_rpc_keep_the_bulk_calls_deadline() -> None:
    transport = UnaryOnly(timeout=30.0)
    coalescer = Coalescer(transport, max_bytes=1024)
    before = time.monotonic()
    answers = coalescer.run("Sign", oversize(3), "token")
    after = time.monotonic()
    assert [type(a) for a in answers] == [keys_pb2.SignResponse] * 3
    assert len(set(transport.deadlines)) == 1  # one deadline for the call, not a fresh one each
    (deadline,) = set(transport.deadlines)
    assert deadline is not None and before + 30.0 <= deadline <= after + 30.0


def test_past_its_deadline_an_operation_left_to_the_unary_rpc_fails_unavailable() -> None:
    transport = UnaryOnly(timeout=0.0)  # the deadline is already behind every operation
    coalescer = Coalescer(transport, max_bytes=1024)
    answers = coalescer.run("Sign", oversize(2), "token")
    assert all(isinstance(a, Unavailable) for a in answers)
    with pytest.raises(Unavailable):
        coalescer.call("Sign", wire.request("Sign", oversize(1)[0]), "token")
    assert None not in transport.deadlines
