"""How the SDK's coalescer forms batches (hsmnode/client/_crypto_streams.py) and writes them as
bytes (_crypto_wire.py), without a member: a told stream takes half of the parts in play, waiting
(at most its linger) for the callers the last answer woke; the bytes parse as the protobuf
library's own CryptoBatch."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from hsmnode.client import _crypto_wire as wire
from hsmnode.client._crypto_streams import COSTLY_LINGER, PIPELINE_PER_OP, Call, Part, StreamPool
from hsmnode.pb import crypto_stream_pb2, keys_pb2

SIGN = keys_pb2.SignRequest(key="k", mechanism="ECDSA-SHA256", data=b"x")


def pool(linger: float, max_ops: int = 64) -> StreamPool:
    transport = SimpleNamespace(  # no member healthy: a test's stream is the only one told
        endpoints=("m1",), healthy_endpoints=list, timeout=5.0, index_tracker=SimpleNamespace(index=7)
    )
    return StreamPool(transport, max_ops=max_ops, max_bytes=1 << 20, max_inflight=1, linger=linger)


def told_stream(p: StreamPool, per_op: float = 0.0) -> Any:
    """What next_batch needs of a MemberStream, told to take a batch as StreamPool.kick tells one;
    `per_op`: its member's CPU seconds per operation (0: not known yet)."""
    stream = SimpleNamespace(
        endpoint="m1", inflight={}, open=True, told=True, wake=threading.Condition(p.lock), per_op=per_op
    )
    p.told = stream
    p.out += 1
    return stream


def comes_back(p: StreamPool, token: str = "t") -> Part:
    """An ordinary caller's next operation, queued as Coalescer.call queues it."""
    part = Part(Call("Sign", token, time.monotonic() + 5, (SIGN.SerializeToString(),)), (0,), 40)
    with p.lock:
        p.pending.append(part)
        if p.returning:
            p.returning -= 1
        p.queued()
    return part


def next_batch_in_thread(p: StreamPool, stream: Any) -> tuple[threading.Thread, list[Any]]:
    taken: list[Any] = []

    def take() -> None:
        with p.lock:
            taken.append(p.next_batch(stream))

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, taken


def test_a_told_stream_waits_for_half_the_parts_in_play_then_takes_them() -> None:
    p = pool(linger=60.0)  # long: this test is about counts, never about time
    p.parts_out, p.returning = 8, 8  # a batch of 8 in flight; an answer just woke 8 callers
    stream = told_stream(p)
    thread, taken = next_batch_in_thread(p, stream)
    first = [comes_back(p) for _ in range(7)]
    assert not taken  # 7 of the 8 it waits for
    eighth = comes_back(p)
    thread.join(10)
    assert taken and taken[0] is not None
    _, token, parts, _ = taken[0]
    assert token == "t" and parts == [*first, eighth]
    assert stream.inflight and p.out == 1 and p.parts_out == 16 and p.told is None


def test_a_told_stream_lingers_no_longer_than_its_linger_nor_waits_for_them_again() -> None:
    p = pool(linger=0.02)
    p.parts_out, p.returning = 8, 8
    stream = told_stream(p)
    back = [comes_back(p) for _ in range(2)]  # six callers never come back
    thread, taken = next_batch_in_thread(p, stream)
    thread.join(10)
    assert taken and taken[0] is not None and taken[0][2] == back
    assert p.returning == 0


class WaitsNoted:
    """A stream's Condition that notes how long each wait may last (and waits that long)."""

    def __init__(self, wake: threading.Condition) -> None:
        self.wake = wake
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.wake.wait(timeout)

    def notify(self) -> None:
        self.wake.notify()


def test_a_stream_whose_member_spends_more_than_pipeline_per_op_lingers_costly_linger_times_longer() -> None:
    cheap, costly = PIPELINE_PER_OP / 2, PIPELINE_PER_OP * 2  # per_op 0: not known yet, as cheap
    for per_op, linger in ((0.0, 0.01), (cheap, 0.01), (costly, 0.01 * COSTLY_LINGER)):
        p = pool(linger=0.01)
        p.parts_out, p.returning = 8, 8
        stream = told_stream(p, per_op)
        noted = stream.wake = WaitsNoted(stream.wake)
        comes_back(p)  # seven callers never come back
        thread, taken = next_batch_in_thread(p, stream)
        thread.join(10)
        assert taken and taken[0] is not None
        assert noted.waits[0] == linger, per_op


def test_a_told_stream_does_not_wait_for_parts_no_caller_is_bringing() -> None:
    p = pool(linger=60.0)
    p.parts_out = 3  # bulk parts in flight; no ordinary caller coming back
    alone = comes_back(p)
    thread, taken = next_batch_in_thread(p, told_stream(p))
    thread.join(10)
    assert taken and taken[0] is not None and taken[0][2] == [alone]


def test_a_batch_holds_one_session_token_and_at_most_max_ops() -> None:
    p = pool(linger=0.0, max_ops=2)
    a1, b1, a2, a3 = comes_back(p, "a"), comes_back(p, "b"), comes_back(p, "a"), comes_back(p, "a")
    thread, taken = next_batch_in_thread(p, told_stream(p))
    thread.join(10)
    assert taken[0][1] == "a" and taken[0][2] == [a1, a2]
    assert list(p.pending) == [b1, a3]  # the other token's part keeps its place


def test_a_batch_written_as_bytes_is_the_protobuf_librarys_crypto_batch() -> None:
    p = pool(linger=0.0)
    now = time.monotonic()
    signs = wire.bodies(
        keys_pb2.SignRequest(key="ec", mechanism="ECDSA-SHA256"), data=[b"a" * 300, b"b", b""]
    )
    decrypts = wire.bodies(
        keys_pb2.DecryptRequest(key="aes", mechanism="AES-GCM", aad=b"ctx"),
        ciphertext=[b"c" * 20000, b"d"],
        iv=[b"i" * 12, b""],  # empty: left out, as the library leaves out a default
    )
    sign_call = Call("Sign", "tok", now + 2.5, signs)
    decrypt_call = Call("Decrypt", "tok", now + 5.0, decrypts)
    batch = crypto_stream_pb2.CryptoBatch.FromString(
        p.encode(300, "tok", [Part(sign_call, [0, 1, 2], 0), Part(decrypt_call, [1, 0], 0)], now)
    )
    expected = crypto_stream_pb2.CryptoBatch(batch_id=300, session="tok", min_index=7)
    expected.ops.add(
        id=0, timeout_ms=2500, sign=keys_pb2.SignRequest(key="ec", mechanism="ECDSA-SHA256", data=b"a" * 300)
    )
    expected.ops.add(
        id=1, timeout_ms=2500, sign=keys_pb2.SignRequest(key="ec", mechanism="ECDSA-SHA256", data=b"b")
    )
    expected.ops.add(id=2, timeout_ms=2500, sign=keys_pb2.SignRequest(key="ec", mechanism="ECDSA-SHA256"))
    expected.ops.add(
        id=1 << 16,
        timeout_ms=5000,
        decrypt=keys_pb2.DecryptRequest(key="aes", mechanism="AES-GCM", aad=b"ctx", ciphertext=b"d"),
    )
    expected.ops.add(
        id=1 << 16 | 1,
        timeout_ms=5000,
        decrypt=keys_pb2.DecryptRequest(
            key="aes", mechanism="AES-GCM", aad=b"ctx", ciphertext=b"c" * 20000, iv=b"i" * 12
        ),
    )
    assert batch == expected
    # the unary RPC's request, when an operation falls back to it
    assert wire.request("Decrypt", decrypts[1]) == expected.ops[3].decrypt
    for method, field in wire.FIELDS.items():
        assert crypto_stream_pb2.CryptoOp.DESCRIPTOR.fields_by_name[field].message_type.name == (
            wire.REQUESTS[method].DESCRIPTOR.name
        )


def streams_of(**members: tuple[list[int], float]) -> StreamPool:
    """A pool over members named like m1, m2 (all healthy), each with batches in flight of these
    operation counts and the member CPU per operation its answers reported (busy_us, EWMA)."""
    transport = SimpleNamespace(
        endpoints=tuple(members), healthy_endpoints=lambda: list(members), timeout=5.0
    )
    p = StreamPool(transport, max_ops=256, max_bytes=1 << 20, max_inflight=2, linger=0.001)
    for name, (counts, per_op) in members.items():
        inflight = {i: ([], count, 0.0) for i, count in enumerate(counts)}
        p.streams[name] = SimpleNamespace(endpoint=name, open=True, inflight=inflight, per_op=per_op)  # type: ignore[assignment]
    return p


def test_a_small_batch_of_cheap_operations_gets_the_next_batch_behind_it_on_its_member() -> None:
    for _ in range(3):  # whichever member the rotation looks at first
        p = streams_of(m1=([8], 0.0001), m2=([], 0.0001), m3=([], 0.0))
        assert p._pick(retry=False).endpoint == "m1"  # type: ignore[union-attr]
        assert p.pipelined == 1


def test_the_next_batch_goes_to_an_idle_member_behind_costly_large_full_or_unknown_batches() -> None:
    for busy in (
        ([8], 0.001),  # costly operations (RSA): spread over the members
        ([64], 0.0001),  # a large batch (sign_many's): spread
        ([8, 8], 0.0001),  # max_inflight batches already
        ([8], 0.0),  # no answer yet: the member's cost is not known
    ):
        p = streams_of(m1=busy, m2=([], 0.0001))
        assert p._pick(retry=False).endpoint == "m2"  # type: ignore[union-attr]
        assert p.pipelined == 0
    p = streams_of(m1=([8], 0.001), m2=([8], 0.001))
    assert p._pick(retry=False) is None  # no room: the batch waits for an answer
