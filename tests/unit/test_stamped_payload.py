"""NodeContext.stamped_payload (GenerateBatch's KeyCreate payloads, built without the command): the
same bytes and the same refusals as `encoded(ctx.stamped(...))`."""

from __future__ import annotations

from typing import Any, cast

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain.errors import DomainError
from hsmnode.service.context import NodeContext, encoded


def context() -> NodeContext:
    return NodeContext(cast(Any, None), cast(Any, None), cast(Any, None), clock_ms=lambda: 1_700_000_000_123)


def key_fields(**overrides: object) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "container": "partition:pay",
        "object_id": "0" * 32,
        "label": 'k-é"1',
        "key_type": "AES",
        "size": "256",
        "object_class": "secret",
        "extractable": True,
        "usage": ("encrypt", "decrypt"),
        "wrapped": b"\x01" * 60,
        "public_der": b"",
        "origin": "generated",
    }
    fields.update(overrides)
    return fields


def outcome(fn: Any) -> bytes | tuple[object, str]:
    try:
        return cast(bytes, fn())
    except DomainError as exc:
        return exc.code, exc.message


@pytest.mark.parametrize(
    ("request_id", "overrides"),
    [
        ("r-1", {}),
        ("", {}),  # no request id
        ("r\x00", {}),  # not printable
        ("r-2", {"label": "x" * 10_000}),  # over the label rule's length
        ("r-3", {"wrapped": b"\x00" * (c.MAX_COMMAND_BYTES + 1)}),  # over the command size limit
    ],
)
def test_the_payload_and_the_refusals_are_those_of_the_command(
    request_id: str, overrides: dict[str, Any]
) -> None:
    ctx = context()
    fields = key_fields(**overrides)
    expected = outcome(lambda: encoded(ctx.stamped(c.KeyCreate, "client:x", request_id, **fields)))
    assert outcome(lambda: ctx.stamped_payload(c.KeyCreate, "client:x", request_id, fields)) == expected
