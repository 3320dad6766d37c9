"""HsmState: the replicated state and its one entry point, `apply(command) -> Result`.

Rules this file keeps (DESIGN.md §3):
- apply is a pure function of (state, command): no clock, no randomness, no I/O;
- it validates before it mutates and returns a `Result`, never raises;
- authorization is decided here, from `command.actor` and replicated state;
- every applied command, allowed or refused, appends one audit record;
- a request_id seen before returns the first result and changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from hsmnode.domain import commands as c
from hsmnode.domain.audit import AuditLog, AuditRecord
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.errors import DomainError, ErrorCode

SNAPSHOT_VERSION = 1
DEDUP_CAPACITY = 10_000
AUDIT_NOTE_MAX = 1000

NODE_ACTOR_PREFIX = "node:"
CLIENT_ACTOR_PREFIX = "client:"


@dataclasses.dataclass(frozen=True)
class Result:
    """The outcome of one command: identical on every member."""

    ok: bool
    code: ErrorCode | None = None
    message: str = ""
    value: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Set only for an unexpected exception inside apply; the adapter logs it.
    internal_trace: str = ""

    @classmethod
    def success(cls, **value: Any) -> Result:
        return cls(ok=True, value=value)

    @classmethod
    def error(cls, code: ErrorCode, message: str) -> Result:
        return cls(ok=False, code=code, message=message)

    def to_data(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "code": self.code.value if self.code else None,
            "message": self.message,
            "value": self.value,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Result:
        code = ErrorCode(data["code"]) if data["code"] else None
        return cls(ok=data["ok"], code=code, message=data["message"], value=dict(data["value"]))


@dataclasses.dataclass(frozen=True)
class _Seen:
    command_type: str
    actor: str
    result: Result


class HsmState:
    """All replicated state of one cluster."""

    def __init__(self) -> None:
        self.cluster_id: str | None = None
        self.cluster_created_at: int = 0
        self.audit = AuditLog()
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        # Derived, not replicated: the digest of the state after `_changes` mutations.
        self._changes = 0
        self._digest: tuple[int, str] = (-1, "")
        self._handlers: dict[type[c.Command], Callable[[Any], Result]] = {
            c.InitCluster: self._init_cluster,
            c.AuditNote: self._audit_note,
            c.DebugFail: self._debug_fail,
        }

    # --- the entry point --------------------------------------------------

    def apply(self, cmd: c.Command) -> Result:
        seen = self._seen.get(cmd.request_id)
        if seen is not None:
            if seen.command_type == cmd.TYPE and seen.actor == cmd.actor:
                return seen.result
            result = Result.error(
                ErrorCode.INVALID_ARGUMENT,
                f"request_id {cmd.request_id!r} was already used for another command ({seen.command_type}); "
                "use a fresh request_id for a new command",
            )
            self._record(cmd, result)
            return result
        handler = self._handlers.get(type(cmd))
        try:
            if handler is None:
                raise DomainError(ErrorCode.INVALID_ARGUMENT, f"command {cmd.TYPE!r} is not supported")
            result = handler(cmd)
        except DomainError as exc:
            result = Result.error(exc.code, exc.message)
        except Exception as exc:  # deterministic code fails the same way on every member
            result = Result(
                ok=False,
                code=ErrorCode.INTERNAL,
                message=f"internal error while applying {cmd.TYPE}: {type(exc).__name__}: {exc}",
                internal_trace=traceback.format_exc(),
            )
        self._record(cmd, result)
        self._remember(cmd, result)
        return result

    def _record(self, cmd: c.Command, result: Result) -> AuditRecord:
        self._changes += 1
        return self.audit.append(
            timestamp=cmd.timestamp,
            actor=cmd.actor,
            request_id=cmd.request_id,
            command=cmd.TYPE,
            outcome="ok" if result.ok else str(result.code),
            detail=str(result.value.get("audit", "")) if result.ok else result.message,
        )

    def _remember(self, cmd: c.Command, result: Result) -> None:
        stored = dataclasses.replace(result, internal_trace="")
        self._seen[cmd.request_id] = _Seen(cmd.TYPE, cmd.actor, stored)
        while len(self._seen) > DEDUP_CAPACITY:
            self._seen.popitem(last=False)

    # --- handlers ---------------------------------------------------------

    def _init_cluster(self, cmd: c.InitCluster) -> Result:
        if not cmd.actor.startswith(NODE_ACTOR_PREFIX):
            raise DomainError(
                ErrorCode.PERMISSION_DENIED, "only a member node may bootstrap the cluster identity"
            )
        if not cmd.cluster_id:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, "cluster_id must not be empty")
        if self.cluster_id is not None:
            if self.cluster_id == cmd.cluster_id:
                return Result.success(cluster_id=self.cluster_id, audit="already bootstrapped")
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"this state belongs to cluster {self.cluster_id}, not {cmd.cluster_id}",
            )
        self.cluster_id = cmd.cluster_id
        self.cluster_created_at = cmd.timestamp
        return Result.success(cluster_id=cmd.cluster_id, audit=f"cluster {cmd.cluster_id} bootstrapped")

    def _audit_note(self, cmd: c.AuditNote) -> Result:
        if not cmd.actor.startswith(CLIENT_ACTOR_PREFIX):
            raise DomainError(ErrorCode.PERMISSION_DENIED, "audit notes are written by clients")
        text = cmd.text.strip()
        if not text or len(text) > AUDIT_NOTE_MAX:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, f"audit note must be 1-{AUDIT_NOTE_MAX} characters")
        if not text.isprintable():
            raise DomainError(ErrorCode.INVALID_ARGUMENT, "audit note must be printable text on one line")
        seq = len(self.audit) + 1  # the record that _record appends next
        return Result.success(seq=seq, audit=text)

    def _debug_fail(self, cmd: c.DebugFail) -> Result:
        raise RuntimeError(f"injected failure: {cmd.reason}")

    # --- queries ----------------------------------------------------------

    def audit_records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]:
        return self.audit.records(after_seq, limit)

    # --- snapshot ---------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """Versioned plain data (dict, list, str, int, bool, None): what snapshots hold."""
        return {
            "v": SNAPSHOT_VERSION,
            "cluster": {"id": self.cluster_id, "created_at": self.cluster_created_at},
            "audit": self.audit.to_data(),
            "seen": [[rid, s.command_type, s.actor, s.result.to_data()] for rid, s in self._seen.items()],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> HsmState:
        version = data.get("v")
        if version != SNAPSHOT_VERSION:
            raise ValueError(
                f"unsupported snapshot version {version!r} (this member reads {SNAPSHOT_VERSION})"
            )
        state = cls()
        state.cluster_id = data["cluster"]["id"]
        state.cluster_created_at = data["cluster"]["created_at"]
        state.audit = AuditLog.from_data(data["audit"])
        for rid, command_type, actor, result in data["seen"]:
            state._seen[rid] = _Seen(command_type, actor, Result.from_data(result))
        return state

    def digest(self) -> str:
        """sha256 of the canonical snapshot: equal on members that applied the same commands.

        Every applied command appends an audit record, so the record count marks
        each change; the digest is recomputed only after a change.
        """
        if self._digest[0] != self._changes:
            self._digest = (self._changes, hashlib.sha256(canonical_json(self.to_data())).hexdigest())
        return self._digest[1]
