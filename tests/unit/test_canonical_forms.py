"""The shapes apply writes by hand (domain/canonical_forms.py) are byte for byte what the encoder
writes, for any text (quotes, backslashes, control characters, non-ASCII, astral characters), and a
value of another type falls back to the encoder: the state digest and the audit chain must not
change with the speed-up (members of both versions compare digests during a rolling upgrade)."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hsmnode.domain.audit import GENESIS_HASH, AuditLog, chain_hash, hashed_body
from hsmnode.domain.canonical_forms import cluster_body, result_text, seen_text
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.result import Result
from hsmnode.domain.state import Seen, SeenTable, _sha_int

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # no lone surrogates: not UTF-8
ints = st.integers(min_value=-(2**70), max_value=2**70)


@given(
    seq=ints,
    timestamp=ints,
    strings=st.tuples(text, text, text, text, text),
    later=st.tuples(text, text, text, text),
)
def test_a_cluster_record_body_is_hashed_bodys(
    seq: int, timestamp: int, strings: tuple[str, ...], later: tuple[str, ...]
) -> None:
    actor, request_id, command, outcome, detail = strings
    category, container, key, member = later
    fields: dict[str, Any] = dict(
        seq=seq,
        timestamp=timestamp,
        actor=actor,
        request_id=request_id,
        command=command,
        outcome=outcome,
        detail=detail,
        category=category,
        container=container,
        key=key,
        member=member,
    )
    assert cluster_body(**fields) == hashed_body(**fields)


@given(
    seq=ints,
    timestamp=ints,
    strings=st.tuples(text, text, text, text, text),
    later=st.tuples(text, text, text),
    count=ints,
)
def test_a_key_usage_record_body_is_hashed_bodys(
    seq: int, timestamp: int, strings: tuple[str, ...], later: tuple[str, ...], count: int
) -> None:
    actor, request_id, command, outcome, detail = strings
    container, key, member = later
    fields: dict[str, Any] = dict(
        seq=seq,
        timestamp=timestamp,
        actor=actor,
        request_id=request_id,
        command=command,
        outcome=outcome,
        detail=detail,
        category="key_usage",
        container=container,
        key=key,
        member=member,
        count=count,
    )
    assert cluster_body(**fields) == hashed_body(**fields)


def described(draw_text: st.DrawFn) -> dict[str, Any]:
    return {
        "label": draw_text(text),
        "key_type": draw_text(text),
        "size": draw_text(text),
        "object_class": draw_text(text),
        "exportable": draw_text(st.booleans()),
        "usage": draw_text(st.lists(text, max_size=6)),
        "public_der": draw_text(text),
        "origin": draw_text(text),
        "created_at": draw_text(ints),
        "container": draw_text(text),
        "blocked": draw_text(st.booleans()),
    }


@st.composite
def results(draw: st.DrawFn) -> Result:
    kind = draw(st.sampled_from(["key", "other", "refused"]))
    if kind == "refused":
        return Result(
            ok=False,
            code=draw(st.sampled_from(list(ErrorCode))),
            message=draw(text),
            audit_detail=draw(text),
        )
    if kind == "key":
        return Result.success(object_id=draw(text), key=described(draw), audit=draw(text))
    value = draw(
        st.dictionaries(text, st.one_of(text, ints, st.booleans(), st.none(), st.lists(text)), max_size=4)
    )
    return Result(ok=True, value=value)


@given(request_id=text, command_type=text, actor=text, result=results())
def test_a_request_ids_entry_is_the_encoders(
    request_id: str, command_type: str, actor: str, result: Result
) -> None:
    assert result_text(result).encode() == canonical_json(result.to_data())
    expected = canonical_json([request_id, command_type, actor, result.to_data()])
    assert seen_text(request_id, command_type, actor, result) == expected
    table = SeenTable()
    table[request_id] = Seen(command_type, actor, result)
    assert table.content_digest() == [
        1,
        f"{_sha_int([request_id, command_type, actor, result.to_data()]):064x}",
    ]


class Flag(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "odd",
    [
        {"ok": 1},  # an int where json writes a bool: "1", not "true"
        {"value": {"object_id": "x", "key": {"label": "k"}, "audit": "a"}},  # a key of another shape
        {"value": {"object_id": "x", "key": "not a dict", "audit": "a"}},
        {"message": Flag.ONE},
    ],
)
def test_a_value_of_another_type_is_written_by_the_encoder(odd: dict[str, Any]) -> None:
    result = Result(**{"ok": True, **odd})
    table = SeenTable()
    table["r"] = Seen("t", "a", result)
    assert table.content_digest() == [1, f"{_sha_int(['r', 't', 'a', result.to_data()]):064x}"]


@pytest.mark.parametrize(
    "odd",
    [{"timestamp": True}, {"timestamp": Flag.ONE}, {"category": 7}, {"count": 3}, {"detail": Flag.ONE}],
)
def test_an_audit_record_of_another_type_or_field_is_hashed_by_hashed_body(odd: dict[str, Any]) -> None:
    fields: dict[str, Any] = dict(
        timestamp=5, actor="a", request_id="r", command="c", outcome="ok", detail="d", container="partition:p"
    )
    fields.update(odd)
    record = AuditLog().append(**fields)
    assert record.hash == chain_hash(GENESIS_HASH, hashed_body(seq=1, **fields))
    assert record.hash == record.recomputed_hash()
