"""Apply handlers for key objects in partitions and keyrings (create, destroy, restore, block).

Key material arrives already wrapped under the cluster SMK by the proposing member;
apply checks who may create what (the CU creates public objects only) and that the
object's attributes are coherent, then stores it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import re

from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import EXTRACTABLE_STORED_AS, KeyObject, KeyOrigin, ObjectClass
from hsmnode.domain.mofn import gate
from hsmnode.domain.result import Result, ok
from hsmnode.domain.rules import check_attributes
from hsmnode.domain.state import HsmState

MAX_OBJECTS = 10_000  # objects a partition or keyring holds at most (README, Access control)
_ORIGINS = frozenset(origin.value for origin in KeyOrigin)
_OBJECT_ID = re.compile(r"[0-9a-f]{32}")


# check_attributes is a pure function of its arguments: the combinations that pass are remembered (a
# burst of key creations repeats one); a refusal is raised anew on every call (lru_cache keeps none)
_coherent = functools.lru_cache(maxsize=256)(check_attributes)


def key_create(state: HsmState, cmd: c.KeyCreate) -> Result:
    operation = "object.create.public" if cmd.object_class == ObjectClass.PUBLIC else "object.create"
    authorize(state, cmd.actor, operation, cmd.timestamp, cmd.container)
    holder = state.container(cmd.container)
    if holder is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no {cmd.container.replace(':', ' ', 1)}")
    if not _OBJECT_ID.fullmatch(cmd.object_id) or cmd.object_id in holder.objects:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"object id {cmd.object_id!r} is malformed or taken")
    rules.check_key_label(cmd.label)
    if holder.objects.has_label(cmd.label):
        raise DomainError(
            ErrorCode.ALREADY_EXISTS,
            f"{cmd.container.replace(':', ' ', 1)} already holds a key labelled '{cmd.label}'",
        )
    if cmd.origin not in _ORIGINS:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"unknown key origin {cmd.origin!r}")
    check = _coherent if type(cmd.usage) is tuple else check_attributes  # a tuple hashes: remembered
    check(cmd.key_type, cmd.size, cmd.object_class, cmd.usage, bool(cmd.wrapped), bool(cmd.public_der))
    gate(state, cmd.container, "generate")  # M-of-N: no key is created while AUTHORIZED
    if len(holder.objects) >= MAX_OBJECTS:
        kind, _, name = cmd.container.partition(":")
        raise DomainError(
            ErrorCode.RESOURCE_EXHAUSTED,
            f"{kind} '{name}' holds {MAX_OBJECTS} objects, the most a {kind} may hold: destroy keys it no "
            f"longer needs (hsmnode key destroy), or create '{cmd.label}' in another {kind}",
        )
    holder.objects[cmd.object_id] = KeyObject(
        id=cmd.object_id,
        label=cmd.label,
        key_type=cmd.key_type,
        size=cmd.size,
        object_class=cmd.object_class,
        extractable=cmd.extractable and cmd.object_class != ObjectClass.PUBLIC,
        usage=tuple(sorted(set(cmd.usage))),
        wrapped=cmd.wrapped,
        public_der=cmd.public_der,
        origin=cmd.origin,
        created_at=cmd.timestamp,
        created_by=cmd.actor,
    )
    # the answer to the request, also to a repeat of it after the key is gone: the key as created
    return ok(
        object_id=cmd.object_id,
        key=described(holder.objects[cmd.object_id], cmd.container),
        audit=f"{cmd.origin} {cmd.object_class} {cmd.key_type}-{cmd.size} key '{cmd.label}' ({cmd.object_id}) in {cmd.container}",
    )


def described(key: KeyObject, container: str) -> dict[str, object]:
    """A key as a result describes it (plain data; no key material): what a request that created it
    answers, also when repeated after the key is gone (DESIGN.md §3.5). Results are replicated
    state: `extractable` keeps its stored name (model.EXTRACTABLE_STORED_AS)."""
    return {
        "label": key.label,
        "key_type": key.key_type,
        "size": key.size,
        "object_class": key.object_class,
        EXTRACTABLE_STORED_AS: key.extractable,
        "usage": list(key.usage),
        "public_der": base64.b64encode(key.public_der).decode("ascii") if key.public_der else "",
        "origin": key.origin,
        "created_at": key.created_at,
        "container": container,
        "blocked": key.blocked,
    }


def key_destroy(state: HsmState, cmd: c.KeyDestroy) -> Result:
    authorize(state, cmd.actor, "object.destroy", cmd.timestamp, cmd.container)
    holder = state.container(cmd.container)
    if holder is None or cmd.object_id not in holder.objects:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no key {cmd.object_id!r} in {cmd.container.replace(':', ' ', 1)}"
        )
    gate(state, cmd.container, "destroy")
    key = holder.objects.pop(cmd.object_id)
    return ok(audit=f"key '{key.label}' ({key.id}) destroyed in {cmd.container}")


_RESTORED_FIELDS = {
    "id": str,
    "label": str,
    "key_type": str,
    "size": str,
    "object_class": str,
    EXTRACTABLE_STORED_AS: bool,
    "usage": list,
    "wrapped": str,
    "public_der": str,
    "blocked": bool,
}


def _restored(encoded: str, index: int) -> KeyObject:
    """One object of a restore, strictly parsed (bytes are base64)."""
    try:
        data = json.loads(encoded)
    except ValueError:
        data = None
    if not isinstance(data, dict) or set(data) != set(_RESTORED_FIELDS):
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"restored object {index} is malformed")
    for name, kind in _RESTORED_FIELDS.items():
        if not isinstance(data[name], kind) or (kind is not bool and isinstance(data[name], bool)):
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT, f"restored object {index}: {name} must be {kind.__name__}"
            )
    try:
        wrapped, public_der = base64.b64decode(data["wrapped"]), base64.b64decode(data["public_der"])
    except (binascii.Error, ValueError):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"restored object {index}: key material is not base64"
        ) from None
    return KeyObject(
        id=data["id"],
        label=data["label"],
        key_type=data["key_type"],
        size=data["size"],
        object_class=data["object_class"],
        extractable=data[EXTRACTABLE_STORED_AS],
        usage=tuple(str(u) for u in data["usage"]),
        wrapped=wrapped,
        public_der=public_der,
        origin=KeyOrigin.RESTORED.value,
        created_at=0,
        created_by="",
        blocked=data["blocked"],
    )


def key_restore(state: HsmState, cmd: c.KeyRestore) -> Result:
    """Restore a backup: same cloning domain, private keys only where cloning is allowed, all or nothing."""
    objects = [_restored(encoded, i) for i, encoded in enumerate(cmd.objects)]
    public_only = all(o.object_class == ObjectClass.PUBLIC for o in objects)
    authorize(
        state,
        cmd.actor,
        "object.create.public" if public_only else "object.create",
        cmd.timestamp,
        cmd.container,
    )
    kind, _, name = cmd.container.partition(":")
    part = state.partitions.get(name) if kind == "partition" else None
    if part is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"backups restore into partitions; no {cmd.container.replace(':', ' ', 1)}"
        )
    if not objects:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "the backup holds no objects: nothing to restore")
    if cmd.cloning_domain != part.cloning_domain:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{name}' is in cloning domain '{part.cloning_domain}', the backup (of partition "
            f"'{cmd.source}') in '{cmd.cloning_domain}': a backup restores only into its own cloning domain",
        )
    private = sum(1 for o in objects if o.object_class == ObjectClass.PRIVATE)
    if private and not part.policy.private_key_cloning:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"partition '{name}': policy private_key_cloning is off, so the backup's {private} private key(s) "
            "cannot be restored here",
        )
    gate(state, cmd.container, "generate")
    labels = [o.label for o in objects]
    taken = sorted({label for label in labels if part.objects.has_label(label)})
    if taken or len(set(labels)) != len(labels):
        raise DomainError(
            ErrorCode.ALREADY_EXISTS,
            f"partition '{name}' already holds key(s) labelled {', '.join(taken) or 'twice in the backup'}: "
            "nothing was restored (restore into another partition, or destroy those keys first)",
        )
    if len(part.objects) + len(objects) > MAX_OBJECTS:
        raise DomainError(
            ErrorCode.RESOURCE_EXHAUSTED,
            f"partition '{name}' holds {len(part.objects)} objects and the backup {len(objects)}: together "
            f"over the {MAX_OBJECTS} a partition may hold, so nothing was restored (destroy keys it no "
            "longer needs, or restore into another partition)",
        )
    for o in objects:
        if not _OBJECT_ID.fullmatch(o.id) or o.id in part.objects:
            raise DomainError(ErrorCode.INVALID_ARGUMENT, f"object id {o.id!r} is malformed or taken")
        rules.check_key_label(o.label)
        check_attributes(o.key_type, o.size, o.object_class, o.usage, bool(o.wrapped), bool(o.public_der))
    for o in objects:
        o.created_at, o.created_by = cmd.timestamp, cmd.actor
        o.extractable = o.extractable and o.object_class != ObjectClass.PUBLIC
        part.objects[o.id] = o
    return ok(
        object_ids=[o.id for o in objects],
        keys=[described(o, cmd.container) for o in objects],
        source=cmd.source,
        audit=f"restored {len(objects)} object(s) ({', '.join(labels)}) into {cmd.container} from a backup of "
        f"partition '{cmd.source}' (cloning domain '{cmd.cloning_domain}')",
    )


def key_block(state: HsmState, cmd: c.KeyBlock) -> Result:
    authorize(state, cmd.actor, "object.modify", cmd.timestamp, cmd.container)
    holder = state.container(cmd.container)
    if holder is None or cmd.object_id not in holder.objects:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no key {cmd.object_id!r} in {cmd.container.replace(':', ' ', 1)}"
        )
    gate(state, cmd.container, "block")
    key = holder.objects[cmd.object_id] = dataclasses.replace(
        holder.objects[cmd.object_id], blocked=cmd.blocked
    )
    return ok(
        audit=f"key '{key.label}' ({key.id}) in {cmd.container} {'blocked' if cmd.blocked else 'unblocked'}"
    )
