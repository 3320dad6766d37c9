"""HsmState: the replicated state as data, its queries, its snapshot and its digest.

Commands change it only through `hsmnode.domain.apply.apply(state, command)` (DESIGN.md §3);
this module imports nothing above the data model, so every rules and handler module may
import it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from typing import Any

from hsmnode.domain.audit import AuditLog, AuditRecord
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.model import ApplianceUser, Client, CustomRole, Hsm, Keyring, Partition
from hsmnode.domain.result import Result

SNAPSHOT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Seen:
    """A request id's first outcome: what a repeat of (command type, actor) is answered with."""

    command_type: str
    actor: str
    result: Result


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
        # request id -> its first outcome, oldest first (apply keeps the newest DEDUP_CAPACITY)
        self.seen: OrderedDict[str, Seen] = OrderedDict()
        # Derived, not replicated: the digest and the audit record count it was computed at.
        self._digest: tuple[int, str] = (-1, "")

    # --- queries ----------------------------------------------------------

    def prior(self, request_id: str) -> tuple[str, str, Result] | None:
        """(command type, actor, first result) of a request id applied before, if it is remembered."""
        seen = self.seen.get(request_id)
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
            "seen": [[rid, s.command_type, s.actor, s.result.to_data()] for rid, s in self.seen.items()],
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
            state.seen[rid] = Seen(command_type, actor, Result.from_data(result))
        return state

    def digest(self) -> str:
        """sha256 of the canonical snapshot: equal on members that applied the same commands.

        Every applied command that changes state appends an audit record, so the record count
        marks each change; the digest is recomputed only after a change.
        """
        if self._digest[0] != len(self.audit):
            self._digest = (len(self.audit), hashlib.sha256(canonical_json(self.to_data())).hexdigest())
        return self._digest[1]
