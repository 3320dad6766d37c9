"""The outcome of one applied command, `Result`: the bottom of the domain (it imports only errors).

A Result is replicated as data (the dedup table in snapshots holds first results), so
`to_data`/`from_data` keep their field names and values stable.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hsmnode.domain.errors import ErrorCode


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
        return cls(ok=True, value=value)

    @classmethod
    def error(cls, code: ErrorCode, message: str) -> Result:
        return cls(ok=False, code=code, message=message)

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


def ok(**value: Any) -> Result:
    """A success carrying `value` (what the answer and the audit record are built from).

    By convention `value["audit"]` is the audit record's detail and `value["audit_record"]`
    overrides audit fields for an event recorded on behalf of a member."""
    return Result.success(**value)
