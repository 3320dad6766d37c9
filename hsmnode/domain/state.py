"""HsmState: the replicated state as data, its queries, its snapshot and its digest.

Commands change it only through `hsmnode.domain.apply.apply(state, command)` (DESIGN.md §3);
this module imports nothing above the data model, so every rules and handler module may
import it.

The state digest (`digest`, DIGEST_VERSION 2) is what members compare to prove they hold the
same state; it must stay cheap at 10,000 keys (cluster status asks for it, under the state
lock). It is sha256 of the canonical JSON of

    {"v": 2, every area of the snapshot except the three big ones, as in `to_data`, with
     partitions and keyrings without their keys, plus
     "objects": {container: ObjectTable.content_digest()}   sum of per-key sha256 (objects.py)
     "audit":   [record count, head hash]                    the hash chain commits to every record
     "seen":    [entries, sum of per-entry sha256]            the request-id memory, order aside}

so a status call costs the small areas plus one hash per key or request id changed since the
last call, never a walk of every key. The sums are order-free: a member that loaded a snapshot
and one that applied the log reach the same value. `full_digest` keeps the first definition
(sha256 of the whole canonical snapshot) for the comparisons with data written before it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from typing import Any

from hsmnode.domain.audit import AuditLog, AuditRecord
from hsmnode.domain.canonical_forms import seen_text
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.model import ApplianceUser, Client, CustomRole, Hsm, Keyring, Partition
from hsmnode.domain.result import Result

SNAPSHOT_VERSION = 1
DIGEST_VERSION = 2
_MODULUS = 1 << 256


def _sha_int(data: Any) -> int:
    return int.from_bytes(hashlib.sha256(canonical_json(data)).digest(), "big")


@dataclasses.dataclass(frozen=True)
class Seen:
    """A request id's first outcome: what a repeat of (command type, actor) is answered with."""

    command_type: str
    actor: str
    result: Result


def _seen_hash(request_id: str, seen: Seen) -> int:
    """sha256 of the canonical JSON of [request id, command type, actor, first result's data], as
    an integer: written out (canonical_forms.seen_text, once per applied command), or through the
    encoder for a value of another type."""
    try:
        text = seen_text(request_id, seen.command_type, seen.actor, seen.result)
    except TypeError:
        return _sha_int([request_id, seen.command_type, seen.actor, seen.result.to_data()])
    return int.from_bytes(hashlib.sha256(text).digest(), "big")


class SeenTable(OrderedDict[str, Seen]):
    """The request-id memory (request id -> Seen, oldest first) with a lazily hashed content sum:
    every mutator keeps the sum (state digest) in step with the contents."""

    def __init__(self) -> None:
        super().__init__()
        self._hashes: dict[str, int] = {}
        self._pending: set[str] = set()
        self._sum = 0

    def _forget(self, request_id: str) -> None:
        if request_id in self._pending:
            self._pending.discard(request_id)
        else:
            self._sum = (self._sum - self._hashes.pop(request_id)) % _MODULUS

    def __setitem__(self, request_id: str, seen: Seen) -> None:
        """Remember a request's outcome (apply): hashed now, so a status call never pays for a burst."""
        if request_id in self:
            self._forget(request_id)
        super().__setitem__(request_id, seen)
        value = _seen_hash(request_id, seen)
        self._hashes[request_id] = value
        self._sum = (self._sum + value) % _MODULUS

    def load(self, request_id: str, seen: Seen) -> None:
        """Remember a request's outcome read from a snapshot: hashed when the digest is first asked for."""
        if request_id in self:
            self._forget(request_id)
        super().__setitem__(request_id, seen)
        self._pending.add(request_id)

    def __delitem__(self, request_id: str) -> None:
        super().__delitem__(request_id)
        self._forget(request_id)

    def popitem(self, last: bool = True) -> tuple[str, Seen]:
        request_id, seen = super().popitem(last)
        self._forget(request_id)
        return request_id, seen

    def pop(self, request_id: str, *default: Any) -> Any:
        if request_id not in self:
            return super().pop(request_id, *default)
        seen = self[request_id]
        del self[request_id]
        return seen

    def clear(self) -> None:
        super().clear()
        self._hashes.clear()
        self._pending.clear()
        self._sum = 0

    def content_digest(self) -> list[Any]:
        for request_id in self._pending:
            value = _seen_hash(request_id, self[request_id])
            self._hashes[request_id] = value
            self._sum = (self._sum + value) % _MODULUS
        self._pending.clear()
        return [len(self), f"{self._sum:064x}"]


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
        self.seen: SeenTable = SeenTable()
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
            **self._small_areas(objects=True),
            "audit": self.audit.to_data(),
            "seen": [[rid, s.command_type, s.actor, s.result.to_data()] for rid, s in self.seen.items()],
        }

    def _small_areas(self, objects: bool) -> dict[str, Any]:
        """Every area of the snapshot but the audit chain and the request-id memory; keys only
        with `objects`."""
        return {
            "cluster": {
                "id": self.cluster_id,
                "created_at": self.cluster_created_at,
                "smk_check": self.smk_check,
            },
            "keyrings": [self.keyrings[k].to_data(objects) for k in sorted(self.keyrings)],
            "members": [[k, *self.members[k]] for k in sorted(self.members)],
            "departed": [[k, *self.departed[k]] for k in sorted(self.departed)],
            "users": [self.users[k].to_data() for k in sorted(self.users)],
            "roles": [self.roles[k].to_data() for k in sorted(self.roles)],
            "clients": [self.clients[k].to_data() for k in sorted(self.clients)],
            "hsm": self.hsm.to_data(),
            "partitions": [self.partitions[k].to_data(objects) for k in sorted(self.partitions)],
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
            state.seen.load(rid, Seen(command_type, actor, Result.from_data(result)))
        return state

    def digest(self) -> str:
        """The state digest (module docstring, DIGEST_VERSION 2): equal on members that applied the
        same commands, or loaded a snapshot of the same state. Costs the small areas plus one hash
        per key and request id changed since the last call.

        Every applied command appends an audit record, so the record count marks each change; the
        digest is recomputed only after one."""
        if self._digest[0] != len(self.audit):
            objects = {
                f"keyring:{k}": self.keyrings[k].objects.content_digest() for k in sorted(self.keyrings)
            }
            objects.update(
                {
                    f"partition:{k}": self.partitions[k].objects.content_digest()
                    for k in sorted(self.partitions)
                }
            )
            data = {
                "v": DIGEST_VERSION,
                **self._small_areas(objects=False),
                "objects": objects,
                "audit": [len(self.audit), self.audit.head],
                "seen": self.seen.content_digest(),
            }
            self._digest = (len(self.audit), hashlib.sha256(canonical_json(data)).hexdigest())
        return self._digest[1]

    def full_digest(self) -> str:
        """The first digest definition: sha256 of the whole canonical snapshot. O(state): for tests
        and tools comparing with data written before DIGEST_VERSION 2, never on a request path."""
        return hashlib.sha256(canonical_json(self.to_data())).hexdigest()
