"""The outcome of one applied command, `Result`: the bottom of the domain (it imports only errors
and frozen.py).

A Result is replicated as data (the dedup table in snapshots holds first results), so
`to_data`/`from_data` keep their field names and values stable.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.frozen import maker


@dataclasses.dataclass(frozen=True)
class Result:
    """The outcome of one command: identical on every member."""

    ok: bool
    code: ErrorCode | None = None
    message: str = ""
    value: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Set only for an unexpected exception inside apply; the adapter logs it.
    internal_trace: str = ""
    # For a refusal whose answer says less than the audit log must (e.g. a hidden lockout).
    audit_detail: str = ""
    # The refusal's own code when the answer's `code` hides it (a locked or disabled user answers
    # as a wrong password): what metrics count where the command is applied (observability/metrics.py);
    # never answered, and not kept in `to_data` (a snapshot's first results stay as they were).
    hidden_code: ErrorCode | None = None

    @classmethod
    def success(cls, **value: Any) -> Result:
        return _make(
            ok=True, code=None, message="", value=value, internal_trace="", audit_detail="", hidden_code=None
        )

    @classmethod
    def error(cls, code: ErrorCode, message: str) -> Result:
        return refusal(code, message)

    def to_data(self) -> dict[str, Any]:
        data = {
            "ok": self.ok,
            "code": self.code.value if self.code else None,
            "message": self.message,
            "value": self.value,
        }
        if self.audit_detail:
            data["audit_detail"] = self.audit_detail
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Result:
        code = ErrorCode(data["code"]) if data["code"] else None
        return cls(
            ok=data["ok"],
            code=code,
            message=data["message"],
            value=dict(data["value"]),
            audit_detail=data.get("audit_detail", ""),
        )


_make = maker(Result)  # once per applied command: frozen.py


def refusal(
    code: ErrorCode, message: str, audit_detail: str = "", hidden_code: ErrorCode | None = None
) -> Result:
    """A refusal (ok False, nothing in value) built as `Result(ok=False, code=..., ...)` builds it."""
    return _make(
        ok=False,
        code=code,
        message=message,
        value={},
        internal_trace="",
        audit_detail=audit_detail,
        hidden_code=hidden_code,
    )


def ok(**value: Any) -> Result:
    """A success carrying `value` (what the answer and the audit record are built from).

    By convention `value["audit"]` is the audit record's detail and `value["audit_record"]`
    overrides audit fields for an event recorded on behalf of a member."""
    return _make(
        ok=True, code=None, message="", value=value, internal_trace="", audit_detail="", hidden_code=None
    )
