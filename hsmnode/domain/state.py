"""HsmState: the replicated state and its one entry point, `apply(command) -> Result`.

Rules this file keeps (DESIGN.md §3):
- apply is a pure function of (state, command): no clock, no randomness, no I/O;
- it validates before it mutates and returns a `Result`, never raises;
- authorization is decided inside apply, from `command.actor` and replicated state
  (handlers call `access.authorize`);
- every applied command, allowed or refused, appends one audit record;
- a request_id seen before returns the first result and changes nothing.

The handlers live by area in `appliance.py` and `hsm.py`.
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
from hsmnode.domain.model import ApplianceUser, Client, CustomRole, Hsm, Keyring, Partition

SNAPSHOT_VERSION = 1
DEDUP_CAPACITY = 10_000


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


@dataclasses.dataclass(frozen=True)
class _Seen:
    command_type: str
    actor: str
    result: Result


Handler = Callable[["HsmState", Any], Result]


class HsmState:
    """All replicated state of one cluster."""

    def __init__(self) -> None:
        self.cluster_id: str | None = None
        self.cluster_created_at: int = 0
        self.smk_check: str = ""
        self.users: dict[str, ApplianceUser] = {}
        self.roles: dict[str, CustomRole] = {}
        self.clients: dict[str, Client] = {}
        self.hsm = Hsm()
        self.partitions: dict[str, Partition] = {}
        self.keyrings: dict[str, Keyring] = {}
        self.members: dict[str, tuple[str, str]] = {}  # member id -> (raft address, gRPC address)
        # members removed from the directory, so a removal Raft has not completed can still be finished
        # by id: member id -> (raft address, gRPC address, removed at ms); the newest DEPARTED_CAPACITY
        self.departed: dict[str, tuple[str, str, int]] = {}
        self.audit = AuditLog()
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        # Derived, not replicated: the digest after `_changes` mutations; fingerprint index.
        self._changes = 0
        self._digest: tuple[int, str] = (-1, "")

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
        handler = _handlers().get(type(cmd))
        try:
            if handler is None:
                raise DomainError(ErrorCode.INVALID_ARGUMENT, f"command {cmd.TYPE!r} is not supported")
            result = handler(self, cmd)
        except DomainError as exc:
            result = Result(ok=False, code=exc.code, message=exc.message, audit_detail=exc.audit_detail)
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
        fields = {
            "command": cmd.TYPE,
            "outcome": "ok" if result.ok else str(result.code),
            "category": _CATEGORY.get(cmd.TYPE.partition(".")[0], ""),
            "container": _container_of(cmd),
            "key": str(getattr(cmd, "object_id", "")),
            "member": "",
        }
        if result.ok:  # an event recorded on behalf of a member (audit.key) names its own command
            fields.update(result.value.get("audit_record", {}))
        return self.audit.append(
            timestamp=cmd.timestamp,
            actor=cmd.actor,
            request_id=cmd.request_id,
            detail=str(result.value.get("audit", ""))
            if result.ok
            else (result.audit_detail or result.message),
            **fields,
        )

    def _remember(self, cmd: c.Command, result: Result) -> None:
        if result.code is ErrorCode.UNAVAILABLE:
            return  # transient by definition: a retry with the same request_id is evaluated anew
        stored = dataclasses.replace(result, internal_trace="")
        self._seen[cmd.request_id] = _Seen(cmd.TYPE, cmd.actor, stored)
        while len(self._seen) > DEDUP_CAPACITY:
            self._seen.popitem(last=False)

    # --- queries ----------------------------------------------------------

    def prior(self, request_id: str) -> tuple[str, str, Result] | None:
        """(command type, actor, first result) of a request id applied before, if it is remembered."""
        seen = self._seen.get(request_id)
        return (seen.command_type, seen.actor, seen.result) if seen else None

    def audit_records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]:
        return self.audit.records(after_seq, limit)

    def client_by_fingerprint(self, fingerprint: str) -> Client | None:
        for client in self.clients.values():
            if client.fingerprint == fingerprint:
                return client
        return None

    def container(self, ref: str) -> Partition | Keyring | None:
        """The partition or keyring a container reference ("partition:<name>", "keyring:<label>") names."""
        kind, _, name = ref.partition(":")
        if kind == "partition":
            return self.partitions.get(name)
        if kind == "keyring":
            return self.keyrings.get(name)
        return None

    def cluster_partition(self) -> Partition | None:
        for part in self.partitions.values():
            if part.cluster:
                return part
        return None

    def registered_certificates(self) -> list[str]:
        return [self.clients[name].cert_pem for name in sorted(self.clients)]

    # --- snapshot ---------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """Versioned plain data (dict, list, str, int, bool, None): what snapshots hold."""
        return {
            "v": SNAPSHOT_VERSION,
            "cluster": {
                "id": self.cluster_id,
                "created_at": self.cluster_created_at,
                "smk_check": self.smk_check,
            },
            "keyrings": [self.keyrings[k].to_data() for k in sorted(self.keyrings)],
            "members": [[k, *self.members[k]] for k in sorted(self.members)],
            "departed": [[k, *self.departed[k]] for k in sorted(self.departed)],
            "users": [self.users[k].to_data() for k in sorted(self.users)],
            "roles": [self.roles[k].to_data() for k in sorted(self.roles)],
            "clients": [self.clients[k].to_data() for k in sorted(self.clients)],
            "hsm": self.hsm.to_data(),
            "partitions": [self.partitions[k].to_data() for k in sorted(self.partitions)],
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
        state.smk_check = data["cluster"].get("smk_check", "")
        state.keyrings = {k["label"]: Keyring.from_data(k) for k in data.get("keyrings", [])}
        state.members = {m[0]: (m[1], m[2]) for m in data.get("members", [])}
        state.departed = {m[0]: (m[1], m[2], m[3]) for m in data.get("departed", [])}
        state.users = {u["name"]: ApplianceUser.from_data(u) for u in data["users"]}
        state.roles = {r["name"]: CustomRole.from_data(r) for r in data["roles"]}
        state.clients = {cl["name"]: Client.from_data(cl) for cl in data["clients"]}
        state.hsm = Hsm.from_data(data["hsm"])
        state.partitions = {p["name"]: Partition.from_data(p) for p in data["partitions"]}
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


_CATEGORY = {"key": "key_management", "login": "access"}


def _container_of(cmd: c.Command) -> str:
    """The partition or keyring a command is about, for the audit record."""
    container = getattr(cmd, "container", "")
    if container:
        return str(container)
    for field in ("partition", "owner"):
        name = getattr(cmd, field, "")
        if isinstance(name, str) and name:
            return f"partition:{name}"
    return ""


_HANDLERS: dict[type[c.Command], Handler] = {}


def _handlers() -> dict[type[c.Command], Handler]:
    if not _HANDLERS:
        from hsmnode.domain import (
            appliance,
            authorize_handlers,
            backup,
            grants,
            hsm,
            keyrings,
            keys,
            membership,
        )

        _HANDLERS.update(appliance.HANDLERS)
        _HANDLERS.update(hsm.HANDLERS)
        _HANDLERS.update(keys.HANDLERS)
        _HANDLERS.update(keyrings.HANDLERS)
        _HANDLERS.update(authorize_handlers.HANDLERS)
        _HANDLERS.update(grants.HANDLERS)
        _HANDLERS.update(membership.HANDLERS)
        _HANDLERS.update(backup.HANDLERS)
    return _HANDLERS
