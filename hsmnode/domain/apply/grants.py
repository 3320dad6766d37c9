"""Apply handler for partition permissions between users (DOMAIN.md §4; seed 004).

Every partition is its owner's: the owner holds every permission on it, always
(reflexive, irrevocable). The owner — a CO session on the partition — may grant
another partition's users create, remove, read (use keys) and update-log-attributes
on all its objects. Grants are not transitive (only the owner grants) and not
symmetric (A granting B says nothing about B's partition). Enforcement is in
`access.authorize`, on every object operation.
"""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.permissions import GRANT_PERMISSIONS
from hsmnode.domain.result import Result, ok
from hsmnode.domain.state import HsmState


def grant_set(state: HsmState, cmd: c.GrantSet) -> Result:
    authorize(state, cmd.actor, "partition.grant", cmd.timestamp, f"partition:{cmd.owner}")
    owner = state.partitions[cmd.owner]
    if cmd.grantee == cmd.owner:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"partition '{cmd.owner}' always holds every permission on itself: that cannot be granted or revoked",
        )
    if cmd.grantee not in state.partitions:
        raise DomainError(ErrorCode.NOT_FOUND, f"no partition '{cmd.grantee}' to grant to")
    unknown = sorted(set(cmd.permissions) - set(GRANT_PERMISSIONS))
    if unknown:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown permission(s) {', '.join(unknown)} (known: {', '.join(GRANT_PERMISSIONS)})",
        )
    if cmd.permissions:
        owner.grants[cmd.grantee] = sorted(set(cmd.permissions))
        detail = f"partition '{cmd.owner}' grants '{cmd.grantee}': {', '.join(owner.grants[cmd.grantee])}"
    else:
        owner.grants.pop(cmd.grantee, None)
        detail = f"partition '{cmd.owner}' revokes every grant to '{cmd.grantee}'"
    return ok(permissions=owner.grants.get(cmd.grantee, []), audit=detail)
