"""frozen.maker builds what the frozen dataclass's own __init__ builds (equal, same instance dict in
the same order, same pickle), and falls back to that __init__ for defaults and wrong fields."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain.audit import AuditRecord
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.frozen import maker
from hsmnode.domain.result import Result, ok, refusal
from hsmnode.domain.state import Seen


def test_a_made_object_is_the_classes_own() -> None:
    fields = dict(actor="a", request_id="r", timestamp=1, text="note")
    made, built = maker(c.AuditNote)(**fields), c.AuditNote(**fields)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert list(vars(made).items()) == list(vars(built).items())
    assert pickle.dumps(made) == pickle.dumps(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.text = "changed"  # type: ignore[misc]


def test_defaults_other_orders_and_wrong_fields_go_through_init() -> None:
    make = maker(AuditRecord)
    short = dict(seq=1, timestamp=2, actor="a", request_id="r", command="c", outcome="ok", detail="")
    record = make(**short, prev_hash="0", hash="1")  # the later fields take their defaults
    assert record == AuditRecord(**short, prev_hash="0", hash="1") and record.count == 0
    assert list(vars(make(hash="1", prev_hash="0", **short))) == list(vars(record))
    with pytest.raises(TypeError):
        make(**short, prev_hash="0", hash="1", colour="red")


def test_results_and_seen_entries_equal_the_constructors() -> None:
    assert ok(a=1) == Result(ok=True, value={"a": 1}) == Result.success(a=1)
    assert refusal(ErrorCode.NOT_FOUND, "no") == Result(ok=False, code=ErrorCode.NOT_FOUND, message="no")
    assert Result.error(ErrorCode.NOT_FOUND, "no") == refusal(ErrorCode.NOT_FOUND, "no")
    full = refusal(ErrorCode.UNAUTHENTICATED, "no", "locked", ErrorCode.RESOURCE_EXHAUSTED)
    assert full == Result(
        ok=False,
        code=ErrorCode.UNAUTHENTICATED,
        message="no",
        audit_detail="locked",
        hidden_code=ErrorCode.RESOURCE_EXHAUSTED,
    )
    assert maker(Seen)(command_type="t", actor="a", result=full) == Seen("t", "a", full)


def test_a_class_with_post_init_keeps_its_init() -> None:
    @dataclasses.dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    assert maker(Checked) is Checked
