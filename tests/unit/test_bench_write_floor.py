"""bench/write_floor.py's logic that is not timing: its argument checks and how one batched call's
answer is split among the batch's writes (a wrong length sends each write alone). Performance is
measured by the module itself, never here."""

from __future__ import annotations

import pytest

from bench.common import Timing
from bench.write_floor import PAYLOAD, FloorClient, _against, check
from hsmnode.client._write_batch import Fallback, Write


@pytest.mark.parametrize(
    ("rates", "seconds", "threads", "variants", "compare", "names"),
    [
        ([], 3.0, 16, [], False, "--rates"),
        ([250.0, -1.0], 3.0, 16, [], False, "--rates"),
        ([250.0], 0.0, 16, [], False, "--seconds"),
        ([250.0], 3.0, 0, [], False, "--threads"),
        ([250.0], 3.0, 16, ["tls13"], False, "--variants tls13"),
        ([1000.0, 1000.0, 1000.0], 3.0, 16, [], True, "--no-compare"),
    ],
)
def test_check_refuses_what_the_run_cannot_honour(
    rates: list[float], seconds: float, threads: int, variants: list[str], compare: bool, names: str
) -> None:
    with pytest.raises(ValueError, match=names):
        check(rates, seconds, threads, variants, compare)


def test_check_accepts_the_bench_defaults_and_many_keys_without_compare() -> None:
    check([250.0, 500.0, 1000.0], 3.0, 16, ["insecure", "unary", "pipelined"], True)
    check([1000.0, 1000.0, 1000.0], 3.0, 16, [], False)


def _client(answer: object) -> FloorClient:
    client = FloorClient(1, None)  # the channel connects lazily: nothing listens, nothing is called

    def call(request: bytes, timeout: float) -> bytes:
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, bytes)
        return answer

    client.call = call  # type: ignore[assignment,method-assign]
    return client


def _writes(n: int) -> list[Write]:
    return [Write(bytes([i]) * PAYLOAD, "floor", 0.0) for i in range(n)]


def test_a_batch_answer_is_split_in_order() -> None:
    answer = b"".join(bytes([65 + i]) * PAYLOAD for i in range(3))
    client = _client(answer)
    writes = _writes(3)
    client._send("floor", writes)
    assert [w.answer for w in writes] == [bytes([65 + i]) * PAYLOAD for i in range(3)]
    client.close()


@pytest.mark.parametrize("answer", [b"short", RuntimeError("member gone")])
def test_a_wrong_or_failed_answer_sends_each_write_alone(answer: object) -> None:
    client = _client(answer)
    writes = _writes(2)
    client._send("floor", writes)
    assert all(w.answer == Fallback(True) for w in writes)
    client.close()


def _timing(rate: float, p50_ms: float) -> Timing:
    return Timing(rate=rate, p50_ms=p50_ms, p99_ms=2 * p50_ms, ops=int(rate), failed=0)


def test_a_row_served_below_its_offered_rate_gets_no_ratio() -> None:
    # both served the rate: hsmnode's p50 over the floor's
    assert _against(_timing(998.0, 14.0), _timing(996.0, 7.0), 1000.0) == (2.0, "")
    # the floor fell behind (a backlog, not the rate): no ratio, and the note says which
    ratio, note = _against(_timing(998.0, 14.0), _timing(130.0, 900.0), 250.0)
    assert ratio is None and "the floor served under 95% of the 250/s offered" in note
    ratio, note = _against(_timing(700.0, 400.0), _timing(996.0, 7.0), 1000.0)
    assert ratio is None and note.startswith("no ratio: this row served under")
    # the lone write has no offered rate: always a ratio
    assert _against(_timing(180.0, 5.0), _timing(250.0, 2.5), None) == (2.0, "")
