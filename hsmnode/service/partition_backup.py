"""Partition backup and restore (Luna semantics; DOMAIN.md §1 CO and CU).

- The CO backs up every object of its partition, the CU its public objects (seed 001).
  The member unwraps each key from the SMK in memory and seals them all into one file
  encrypted under the SMK (crypto/backup.py): only this cluster can read it.
- Private keys are backed up only with the partition policy private_key_cloning on
  (Luna policy 0: a backup is a clone); otherwise the backup is refused, naming them.
- (our choice) On an M-of-N partition a backup takes key material out of the
  partition, so it needs the state key use needs (AUTHORIZED, or SESSION_AUTHORIZED
  in this session); a restore creates keys, so it needs the state key creation needs.
- Restore re-wraps every object for the target partition under new ids and proposes
  them in one command: apply refuses a partition of another cloning domain, private
  keys where cloning is off, a label already taken — and then restores nothing.
- Backups and refused backups are key-management events in the cluster chain; a
  restore is its own command there.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from hsmnode.crypto import keys as kc
from hsmnode.crypto import partition_backup as blob
from hsmnode.domain import commands as c
from hsmnode.domain import mofn
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import EXTRACTABLE_STORED_AS, KeyObject, ObjectClass
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext
from hsmnode.service.key_views import KeyView, aad_for, described_view
from hsmnode.service.mofn import session_authorized
from hsmnode.sessions import Claims, SessionKind

MAX_BACKUP = 3 * 1024 * 1024  # bytes: what one restore command can carry, with room to spare


@dataclass(frozen=True)
class Backup:
    data: bytes
    objects: int
    cloning_domain: str


class PartitionBackupService:
    def __init__(self, ctx: NodeContext, smk: kc.Smk) -> None:
        self._ctx = ctx
        self._smk = smk

    def _session(self, call: Call) -> Claims:
        claims = (
            self._ctx.tokens.verify(call.token, call.caller.fingerprint, self._ctx.clock_ms())
            if call.token
            else None
        )
        if claims is None:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED,
                "backup needs a CO or CU session on the partition (hsmnode session open)",
            )
        if claims.kind != SessionKind.PARTITION:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"backups are of partitions (a cloning domain); this is a {claims.kind} session",
            )
        return claims

    def create(self, call: Call) -> Backup:
        """Raises UNAVAILABLE (ReplicationError) outside the member's lease: like key use, a backup takes
        key material out on a session the majority may have revoked since (DESIGN.md §3.8)."""
        claims = self._session(call)
        self._ctx.replicator.require_lease()
        try:
            made = self._create(claims)
        except DomainError as exc:
            self._ctx.audit_key_event(
                claims.actor,
                "partition.backup",
                claims.container,
                "",
                "",
                str(exc.code),
                exc.message,
                required=False,
            )
            raise
        self._ctx.audit_key_event(
            claims.actor,
            "partition.backup",
            claims.container,
            "",
            "",
            "ok",
            f"backup of {made.objects} object(s) of partition '{claims.subject}' (cloning domain '{made.cloning_domain}')",
            required=True,
        )
        return made

    def _create(self, claims: Claims) -> Backup:
        now = self._ctx.clock_ms()
        cu = claims.partition_role == "CU"

        def snapshot(s: HsmState) -> tuple[list[KeyObject], str, bool, str | None]:
            authorize(s, claims.actor, "backup.public" if cu else "backup", now, claims.container)
            held = session_authorized(s, claims, claims.container)
            mofn.gate(s, claims.container, "use", session_authorized=held)
            part = s.partitions[claims.subject]
            return (
                [copy.copy(o) for o in part.objects.values()],
                part.cloning_domain,
                part.policy.private_key_cloning,
                s.cluster_id,
            )

        objects, domain, cloning, cluster_id = self._ctx.read(snapshot)
        if cu:
            objects = [o for o in objects if o.object_class == ObjectClass.PUBLIC]
        private = [o.label for o in objects if o.object_class == ObjectClass.PRIVATE]
        if private and not cloning:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"partition '{claims.subject}': policy private_key_cloning is off, so its private key(s) "
                f"{', '.join(sorted(private))} cannot be backed up (a backup clones them)",
            )
        container = claims.container
        entries = []
        for o in sorted(objects, key=lambda o: o.label):
            secret = b""
            if o.wrapped:
                try:
                    secret = self._smk.unwrap(aad_for(container, o.id), o.wrapped)
                except kc.KeyMaterialError as exc:
                    raise DomainError(ErrorCode.FAILED_PRECONDITION, f"key '{o.label}': {exc}") from None
            entries.append(
                {
                    "label": o.label,
                    "key_type": o.key_type,
                    "size": o.size,
                    "object_class": o.object_class,
                    EXTRACTABLE_STORED_AS: o.extractable,  # backup format v1 keeps the stored name
                    "usage": list(o.usage),
                    "secret": blob.b64(secret),
                    "public_der": blob.b64(o.public_der),
                    "blocked": o.blocked,
                }
            )
        header = {
            "v": 1,
            "cluster_id": cluster_id,
            "partition": claims.subject,
            "cloning_domain": domain,
            "objects": len(entries),
            "public_only": cu,
            "created_at": now,
        }
        return Backup(blob.seal(self._smk, header, entries), len(entries), domain)

    def restore(self, call: Call, data: bytes) -> tuple[list[KeyView], str]:
        """(the restored keys, the partition the backup was made of). A repeated request id gets its
        first answer, built from the replicated result (DESIGN.md §3.5)."""
        claims = self._session(call)
        result = self._ctx.once(
            c.KeyRestore,
            claims.actor,
            call.request_id,
            call.timeout,
            lambda: self._restore_fields(claims, data),
        )
        ids, keys = list(result.value["object_ids"]), list(result.value.get("keys", []))
        if len(keys) != len(ids):  # a result recorded before results described the keys
            keys = [None] * len(ids)
        return [described_view(i, k) for i, k in zip(ids, keys, strict=True)], str(result.value["source"])

    def _restore_fields(self, claims: Claims, data: bytes) -> dict[str, Any]:
        """The KeyRestore fields: the backup checked, opened, and every object re-wrapped under new ids."""
        if len(data) > MAX_BACKUP:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                f"the backup is {len(data)} bytes; one restore takes at most {MAX_BACKUP}",
            )
        try:
            header, _head, _rest = blob.read_header(data)
        except blob.BackupFormatError as exc:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        cluster_id = self._ctx.read(lambda s: s.cluster_id)
        if header.get("cluster_id") != cluster_id:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"the backup was made by cluster {header.get('cluster_id')}, not this one ({cluster_id}); "
                "restore it there",
            )
        try:
            header, entries = blob.open_backup(self._smk, data)
        except blob.BackupFormatError as exc:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        container = claims.container
        objects = []
        for entry in entries:
            object_id = uuid.uuid4().hex
            secret = blob.unb64(entry["secret"])
            objects.append(
                c.canonical_json(
                    {
                        "id": object_id,
                        "label": entry["label"],
                        "key_type": entry["key_type"],
                        "size": entry["size"],
                        "object_class": entry["object_class"],
                        EXTRACTABLE_STORED_AS: entry[EXTRACTABLE_STORED_AS],
                        "usage": entry["usage"],
                        "wrapped": blob.b64(
                            self._smk.wrap(aad_for(container, object_id), secret) if secret else b""
                        ),
                        "public_der": entry["public_der"],
                        "blocked": entry["blocked"],
                    }
                ).decode()
            )
        if sum(len(o) for o in objects) > c.MAX_COMMAND_BYTES - 64 * 1024:
            raise DomainError(
                ErrorCode.RESOURCE_EXHAUSTED,
                f"the backup's {len(objects)} objects are too large to restore at once (one restore carries "
                f"about {c.MAX_COMMAND_BYTES // 1024} KiB of key material): back up smaller partitions",
            )
        return dict(
            container=container,
            source=str(header["partition"]),
            cloning_domain=str(header["cloning_domain"]),
            objects=tuple(objects),
        )
